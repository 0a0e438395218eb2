/**
 * The files the period's calls used (uploaded then or before): each one's size, the tokens
 * extracted from it, what processing it cost and how often it was reused, most recently used
 * first, ten at a time on the API's cursor.
 */
import type { Query } from '../api.ts';
import type { Formats } from '../format.ts';
import { useOrg } from '../sessionContext.tsx';
import type { UsageFile, UsageFiles } from '../types.ts';
import { usePagedList } from '../usePagedList.ts';
import { SpendCell } from './SpendCell.tsx';
import { Await, BehindNote, ListFoot, Panel } from './states.tsx';

const PAGE = 10;

/** "1 conversation", "3 conversations". */
const counted = (formats: Formats, n: number, noun: string) =>
  `${formats.count(n)} ${noun}${n === 1 ? '' : 's'}`;

export function FilesPanel({ query, live }: { query: Query; live: number }) {
  const { org, formats } = useOrg();
  const list = usePagedList<UsageFile, UsageFiles>(
    `/v1/orgs/${org.id}/usage/files`,
    { ...query, limit: PAGE },
    live,
  );
  return (
    <Panel title="Files">
      {list.behind && (
        <BehindNote onCatchUp={list.catchUp}>Files were used since this list was loaded.</BehindNote>
      )}
      <Await loaded={list.first} what="files">
        {(answer) =>
          list.rows.length === 0 ? (
            <p className="empty">No files were used in this period.</p>
          ) : (
            <>
              <div className="scroll">
                <table className="table files cards">
                  <thead>
                    <tr>
                      <th scope="col">File</th>
                      <th scope="col" className="num">
                        Size
                      </th>
                      <th scope="col" className="num">
                        Extracted tokens
                      </th>
                      <th scope="col" className="num">
                        Processing cost
                      </th>
                      <th scope="col" className="num">
                        Reuse
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {list.rows.map((file) => (
                      <tr key={file.id}>
                        <th scope="row">
                          {file.name ?? file.id}
                          <div className="muted">Last used {formats.dateTime(file.last_used_at)}</div>
                        </th>
                        <td className="num" data-label="Size">
                          {file.size_bytes === null ? '—' : formats.fileSize(file.size_bytes)}
                        </td>
                        <td className="num" data-label="Extracted tokens">
                          {file.extracted_tokens === null ? '—' : formats.count(file.extracted_tokens)}
                        </td>
                        <SpendCell
                          unit={answer.unit}
                          figures={file.processing}
                          currency={answer.currency}
                          label="Processing cost"
                        />
                        <td className="num" data-label="Reuse">
                          {counted(formats, file.conversations, 'conversation')}
                          <div className="muted">{counted(formats, file.calls, 'call')}</div>
                        </td>
                      </tr>
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
