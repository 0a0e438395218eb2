/**
 * The searchable sell price list of the org on screen (the operator's too): operation, price and
 * billing unit. An org that pays its provider itself sees the provider's prices in USD.
 */
import { useEffect, useState } from 'react';
import { Await, ListFoot, Panel } from '../components/states.tsx';
import { useOrg } from '../sessionContext.tsx';
import { usePagedList } from '../usePagedList.ts';

interface Price {
  id: string;
  operation: string;
  unit_label: string;
  price: string;
  currency: string;
}

export function PricingScreen() {
  const { org, formats } = useOrg();
  const [text, setText] = useState('');
  const [q, setQ] = useState('');
  // Search once typing pauses, not on every key.
  useEffect(() => {
    const timer = setTimeout(() => setQ(text.trim()), 250);
    return () => clearTimeout(timer);
  }, [text]);
  const prices = usePagedList<Price>('/v1/prices', { q, org_id: org.id, limit: 100 });
  return (
    <Panel title="Pricing">
      {org.billing_mode !== 'credits' && (
        <p className="muted">
          {org.name} pays its model provider itself: these are the provider's list prices in USD
          {org.billing_mode === 'byom' ? ', which its usage is counted at' : ''}.
        </p>
      )}
      <div className="field">
        <label htmlFor="price-search">Search by name</label>
        <input
          id="price-search"
          type="search"
          value={text}
          onChange={(e) => setText(e.target.value)}
          placeholder="e.g. gpt-4o"
        />
      </div>
      <Await loaded={prices.first} what="prices">
        {() =>
          prices.rows.length === 0 ? (
            <p className="empty">No price matches “{q}”.</p>
          ) : (
            <>
              <div className="scroll">
                <table className="table">
                  <thead>
                    <tr>
                      <th scope="col">Name</th>
                      <th scope="col" className="num">
                        Price
                      </th>
                      <th scope="col">Billing unit</th>
                    </tr>
                  </thead>
                  <tbody>
                    {prices.rows.map((p) => (
                      <tr key={p.id}>
                        <th scope="row">{p.operation}</th>
                        <td className="num">{formats.price(p.price, p.currency)}</td>
                        <td>{p.unit_label}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              <ListFoot list={prices} end="End of the price list" />
            </>
          )
        }
      </Await>
    </Panel>
  );
}
