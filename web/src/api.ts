/** The public API, called with the session's credential. Problems (RFC 9457) become ApiError. */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
    readonly param?: string,
  ) {
    super(detail);
  }
}

export type Query = Record<string, string | number | boolean | null | undefined>;

/** Names starting with "_" are the page's own refresh markers: they are never sent. */
export const withQuery = (path: string, query: Query = {}) => {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (!name.startsWith('_') && value !== undefined && value !== null && value !== '')
      params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
};

export interface Api {
  get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T>;
  send<T>(method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T>;
  /** A file answer (export, invoice) as a blob, to hand to the browser as a download. */
  download(path: string, query?: Query): Promise<{ blob: Blob; filename: string }>;
  /** A streamed answer (server-sent events), its body unread. */
  stream(path: string, signal: AbortSignal): Promise<Response>;
}

async function failure(res: Response): Promise<ApiError> {
  try {
    const problem = await res.json();
    return new ApiError(res.status, problem.code ?? 'error', problem.detail ?? res.statusText, problem.param);
  } catch {
    return new ApiError(res.status, 'error', `The server answered ${res.status} ${res.statusText}`);
  }
}

export function createApi(secret: string): Api {
  const headers = { authorization: `Bearer ${secret}` };
  const call = async (method: string, path: string, body?: unknown, signal?: AbortSignal) => {
    let res: Response;
    try {
      res = await fetch(path, {
        method,
        headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (signal?.aborted) throw error;
      throw new ApiError(0, 'network', 'Tally could not be reached. Check your connection and try again.');
    }
    if (!res.ok) throw await failure(res);
    return res;
  };
  return {
    get: async (path, query, signal) => (await call('GET', withQuery(path, query), undefined, signal)).json(),
    send: async (method, path, body) =>
      (await call(method, path, body ?? (method === 'DELETE' ? undefined : {}))).json(),
    stream: (path, signal) => call('GET', path, undefined, signal),
    async download(path, query) {
      const res = await call('GET', withQuery(path, query));
      const disposition = res.headers.get('content-disposition') ?? '';
      const filename = disposition.match(/filename="?([^";]+)"?/)?.[1] ?? path.split('/').pop() ?? 'download';
      return { blob: await res.blob(), filename };
    },
  };
}

/** Saves a blob through the browser's download (no inline script, CSP-safe). */
export function saveBlob({ blob, filename }: { blob: Blob; filename: string }): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
