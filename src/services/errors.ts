/** Errors a service may raise; HTTP maps them to problem+json. A denial that is data is not one. */
export class ServiceError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 422 | 429 | 503,
    readonly code: string,
    message: string,
    readonly param?: string,
  ) {
    super(message);
  }
}

export const notFound = (what: string, param?: string) =>
  new ServiceError(404, 'not_found', `${what} not found`, param);

export const invalid = (param: string, message: string) =>
  new ServiceError(422, 'invalid_field', message, param);
