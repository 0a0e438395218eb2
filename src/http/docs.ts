/** A readable, self-contained API reference rendered from the served OpenAPI document. */
type Doc = {
  info: { title: string; version: string; description?: string };
  paths: Record<
    string,
    Record<
      string,
      {
        summary?: string;
        tags?: string[];
        requestBody?: unknown;
        parameters?: { name: string; in: string; required?: boolean }[];
      }
    >
  >;
};

const html = (s: string) => s.replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`);

export function renderDocs(doc: Doc): string {
  const byTag = new Map<string, string[]>();
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const tag = op.tags?.[0] ?? 'Other';
      const params = (op.parameters ?? [])
        .filter((p) => p.in === 'query')
        .map((p) => html(p.name))
        .join(', ');
      const row = `<tr><td><code class="m ${method}">${method.toUpperCase()}</code></td><td><code>${html(path)}</code></td>
        <td>${html(op.summary ?? '')}${params ? `<br><small>query: ${params}</small>` : ''}</td></tr>`;
      byTag.set(tag, [...(byTag.get(tag) ?? []), row]);
    }
  }
  const sections = [...byTag.entries()]
    .map(([tag, rows]) => `<h2>${html(tag)}</h2><table>${rows.join('')}</table>`)
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${html(doc.info.title)} API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2rem auto;padding:0 1rem;color:#1c2430}
table{border-collapse:collapse;width:100%}td{border-top:1px solid #e3e7ee;padding:.4rem .5rem;vertical-align:top}
.m{font-weight:600;padding:0 .3rem;border-radius:3px}.get{color:#0b6b3a}.post{color:#1d4ed8}.put,.patch{color:#9a5b00}.delete{color:#b42318}
h2{margin-top:2rem}</style></head><body><h1>${html(doc.info.title)} API <small>${html(doc.info.version)}</small></h1>
<p>${html(doc.info.description ?? '')}</p><p>Machine-readable: <a href="/openapi.json">/openapi.json</a>.
Errors are <code>application/problem+json</code> with <code>code</code> and, for a bad field, <code>param</code>.
Amounts are decimal strings.</p>${sections}</body></html>`;
}
