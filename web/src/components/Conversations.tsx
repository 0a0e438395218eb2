/**
 * The period's conversations (chats): each one's title, who started it, its messages, tokens and
 * spend, latest activity or most spent first, ten at a time on the API's cursor. A row opens the
 * conversation's own page.
 */
import { useState } from 'react';
import type { Query } from '../api.ts';
import { Link } from '../router.tsx';
import { useOrg } from '../sessionContext.tsx';
import type { UsageConversation, UsageConversations } from '../types.ts';
import { usePagedList } from '../usePagedList.ts';
import { memberName } from './Breakdowns.tsx';
import { SpendCell } from './SpendCell.tsx';
import { Await, BehindNote, ListFoot, Panel } from './states.tsx';

const PAGE = 10;

/** The orders the API offers (its `sort`), as the toggle names them. */
const ORDERS = [
  { sort: 'last_activity', label: 'Latest' },
  { sort: 'credits', label: 'Most spent' },
] as const;
type Sort = (typeof ORDERS)[number]['sort'];

export function ConversationsPanel({ query, live }: { query: Query; live: number }) {
  const { org } = useOrg();
  const [sort, setSort] = useState<Sort>('last_activity');
  const list = usePagedList<UsageConversation, UsageConversations>(
    `/v1/orgs/${org.id}/conversations`,
    { ...query, sort, limit: PAGE },
    live,
  );
  return (
    <Panel title="Conversations" actions={<OrderToggle sort={sort} onChange={setSort} />}>
      {list.behind && (
        <BehindNote onCatchUp={list.catchUp}>New messages since this list was loaded.</BehindNote>
      )}
      <Await loaded={list.first} what="conversations">
        {(answer) =>
          list.rows.length === 0 ? (
            <p className="empty">No conversations in this period.</p>
          ) : (
            <>
              <div className="scroll">
                <table className="table conversations cards">
                  <thead>
                    <tr>
                      <th scope="col">Conversation</th>
                      <th scope="col">Started by</th>
                      <th scope="col" className="num">
                        Messages
                      </th>
                      <th scope="col" className="num">
                        Tokens
                      </th>
                      <th scope="col" className="num">
                        Spend
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {list.rows.map((chat) => (
                      <ConversationRow key={chat.conversation_id} chat={chat} answer={answer} />
                    ))}
                  </tbody>
                </table>
              </div>
              <ListFoot list={list} label="Show more" className="link" />
            </>
          )
        }
      </Await>
    </Panel>
  );
}

function OrderToggle({ sort, onChange }: { sort: Sort; onChange(sort: Sort): void }) {
  return (
    <fieldset className="segmented">
      <legend className="sr-only">Conversation order</legend>
      {ORDERS.map((order) => (
        <button
          key={order.sort}
          type="button"
          aria-pressed={sort === order.sort}
          onClick={() => onChange(order.sort)}
        >
          {order.label}
        </button>
      ))}
    </fieldset>
  );
}

function ConversationRow({ chat, answer }: { chat: UsageConversation; answer: UsageConversations }) {
  const { formats } = useOrg();
  return (
    <tr>
      <th scope="row">
        <Link href={`/usage/conversations/${encodeURIComponent(chat.conversation_id)}`}>
          {chat.title ?? 'Untitled conversation'}
        </Link>
        <div className="muted">Last active {formats.dateTime(chat.last_activity_at)}</div>
      </th>
      <td data-label="Started by">{memberName(chat.member)}</td>
      <td className="num" data-label="Messages">
        {formats.count(chat.messages)}
      </td>
      <td className="num" data-label="Tokens">
        {formats.count(chat.tokens.total)}
      </td>
      <SpendCell unit={answer.unit} figures={chat} currency={answer.currency} label="Spend" />
    </tr>
  );
}
