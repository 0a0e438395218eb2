/**
 * One conversation under its title: its totals and duration, then each message with its input and
 * output splits, how long the model took, and its exact cost by priced component.
 */
import { Await, ListFoot, Panel } from '../components/states.tsx';
import { modelRefName } from '../format.ts';
import { Link } from '../router.tsx';
import { overviewHref } from '../session.ts';
import { useOrg } from '../sessionContext.tsx';
import type { Page, Tokens, Unit } from '../types.ts';
import { spendText } from '../units.ts';
import { usePagedList } from '../usePagedList.ts';

interface Figures {
  calls: number;
  tokens: Tokens;
  input_breakdown: { message: number | null; context: number | null; files: number | null };
  output_breakdown: { response: number | null; tools: number | null };
  processing_ms: number | null;
  credits: string;
  cost: string;
}
interface Message extends Figures {
  message_id: string;
  started_at: string;
  models: string[];
  features: string[];
  components: { component: string; quantity: string; credits: string; cost: string }[];
}
/** The conversation's totals come with its first page of messages. */
interface Conversation extends Figures, Page<Message> {
  id: string;
  title: string | null;
  unit: Unit;
  currency: string;
  started_at: string;
  duration_seconds: number;
  members: number;
  messages: number;
  files: { id: string; name: string | null; extracted_tokens: number | null; messages: number }[];
}

export function ConversationScreen({ id }: { id: string }) {
  const { org, formats } = useOrg();
  const messages = usePagedList<Message, Conversation>(
    `/v1/orgs/${org.id}/conversations/${encodeURIComponent(id)}`,
    { limit: 200 },
  );
  /** The counts given, labelled: "message 1,200, context 300". */
  const parts = (counts: [string, number | null][]) =>
    counts
      .filter(([, n]) => n !== null)
      .map(([label, n]) => `${label} ${formats.count(n!)}`)
      .join(', ');
  const split = (b: Figures['input_breakdown']) =>
    parts([
      ['message', b.message],
      ['context', b.context],
      ['files', b.files],
    ]);
  const outputSplit = (b: Figures['output_breakdown']) =>
    parts([
      ['response', b.response],
      ['tools', b.tools],
    ]);
  const processing = (ms: number | null) => (ms === null ? '' : formats.seconds(ms));
  return (
    <Panel
      // The chat's title after what the page is, so the heading names both.
      title={messages.first.data?.title ? `Conversation: ${messages.first.data.title}` : 'Conversation'}
      actions={<Link href={overviewHref()}>Back to the overview</Link>}
    >
      <Await loaded={messages.first} what="the conversation">
        {(c) => (
          <>
            <dl className="cards">
              <div className="card">
                <dt>Total</dt>
                <dd>{spendText(formats, c.unit, c)}</dd>
                <dd className="muted">{formats.money(c.cost, c.currency)}</dd>
              </div>
              <div className="card">
                <dt>Messages</dt>
                <dd>{formats.count(c.messages)}</dd>
              </div>
              <div className="card">
                <dt>Input / output tokens</dt>
                <dd>
                  {formats.count(c.tokens.input)} / {formats.count(c.tokens.output)}
                </dd>
              </div>
              <div className="card">
                <dt>Duration</dt>
                <dd>{formats.count(Math.round(c.duration_seconds / 60))} min</dd>
              </div>
              {c.processing_ms !== null && (
                <div className="card">
                  <dt>Processing time</dt>
                  <dd>{processing(c.processing_ms)}</dd>
                </div>
              )}
            </dl>
            <p className="muted">Started {formats.dateTime(c.started_at)}</p>
            <div className="scroll">
              <table className="table">
                <thead>
                  <tr>
                    <th scope="col">Message</th>
                    <th scope="col">Feature / model</th>
                    <th scope="col" className="num">
                      Input
                    </th>
                    <th scope="col" className="num">
                      Output
                    </th>
                    <th scope="col" className="num">
                      Processing
                    </th>
                    <th scope="col" className="num">
                      Spend
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {messages.rows.map((m) => (
                    <tr key={m.message_id}>
                      <td>{formats.dateTime(m.started_at)}</td>
                      <td>
                        {m.features.join(', ')}
                        <div className="muted">{m.models.map(modelRefName).join(', ')}</div>
                      </td>
                      <td className="num">
                        {formats.count(m.tokens.input)}
                        {split(m.input_breakdown) && <div className="muted">{split(m.input_breakdown)}</div>}
                      </td>
                      <td className="num">
                        {formats.count(m.tokens.output)}
                        {outputSplit(m.output_breakdown) && (
                          <div className="muted">{outputSplit(m.output_breakdown)}</div>
                        )}
                      </td>
                      <td className="num">{processing(m.processing_ms)}</td>
                      <td className="num">
                        {spendText(formats, c.unit, m)}
                        {m.components.length > 0 && (
                          <details>
                            <summary>Cost breakdown</summary>
                            <table className="muted">
                              <tbody>
                                {m.components.map((p) => (
                                  <tr key={p.component}>
                                    <th scope="row">{p.component.replace(/_/g, ' ')}</th>
                                    <td className="num">{formats.quantity(p.quantity)}</td>
                                    {c.unit === 'credits' && (
                                      <td className="num">{formats.credits(p.credits)} credits</td>
                                    )}
                                    <td className="num">{formats.price(p.cost, c.currency)}</td>
                                  </tr>
                                ))}
                              </tbody>
                            </table>
                          </details>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <ListFoot list={messages} end="End of the conversation" />
            {c.files.length > 0 && (
              <>
                <h3>Files</h3>
                <ul>
                  {c.files.map((f) => (
                    <li key={f.id}>
                      {f.name ?? f.id}:{' '}
                      {f.extracted_tokens === null ? '' : `${formats.count(f.extracted_tokens)} tokens, `}used
                      in {formats.count(f.messages)} messages
                    </li>
                  ))}
                </ul>
              </>
            )}
          </>
        )}
      </Await>
    </Panel>
  );
}
