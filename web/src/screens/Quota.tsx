/** Where the host app sends a user whose call was blocked by the monthly limit. */
import { Await, Panel } from '../components/states.tsx';
import { Link, useLocation } from '../router.tsx';
import { useOrg } from '../sessionContext.tsx';
import type { Limits } from '../types.ts';
import { useApi } from '../useApi.ts';

export function QuotaScreen() {
  const { org, formats, can } = useOrg();
  const limits = useApi<Limits>(`/v1/orgs/${org.id}/limits`);
  // The API's quota_url names why a call was blocked: the org's monthly limit, a budget, or no credits left.
  const reason = useLocation().searchParams.get('reason');
  if (reason === 'budget_exceeded' || reason === 'insufficient_credits') {
    return (
      <Panel title={reason === 'budget_exceeded' ? 'Budget reached' : 'Out of credits'}>
        <p role="alert">
          {reason === 'budget_exceeded'
            ? 'A budget set for you, your workspace or your project is used up for this period.'
            : `${org.name} has no credits left for this call.`}
        </p>
        {reason === 'insufficient_credits' && can('billing:purchase') ? (
          <Link className="button primary" href="/usage/payments">
            Top up credits
          </Link>
        ) : can('limits:write') ? (
          <Link className="button primary" href="/usage/limits">
            Review budgets and limits
          </Link>
        ) : (
          <p>Ask an owner or a billing admin of {org.name} for help.</p>
        )}
      </Panel>
    );
  }
  return (
    <Panel title="Quota exceeded">
      <Await loaded={limits} what="the limits">
        {(l) => (
          <>
            {l.status === 'exceeded' ? (
              <p role="alert">
                {org.name} has spent {formats.money(l.spent, l.currency)} this month and reached its allowed
                limit of {l.allowed_limit && formats.money(l.allowed_limit, l.currency)}. AI features that use
                credits are paused until the limit is raised or the new month begins on{' '}
                {/* period.end is the instant the next month starts, so it names the reset day. */}
                {formats.date(l.period.end)}.
              </p>
            ) : (
              <p>The monthly limit is not reached right now: AI features are available.</p>
            )}
            {can('limits:write') ? (
              <Link className="button primary" href="/usage/limits">
                Raise the limit
              </Link>
            ) : (
              <p>Ask an owner or a billing admin of {org.name} to raise the limit.</p>
            )}
          </>
        )}
      </Await>
    </Panel>
  );
}
