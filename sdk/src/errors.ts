/** One field-level error of a problem: a JSON pointer into the request, and for NDJSON the line. */
export interface ProblemFieldError {
  pointer: string;
  detail: string;
  line?: number;
}

/**
 * An RFC 9457 problem answered by the API (application/problem+json), or an error answer that
 * was not one, turned into the same shape so callers handle a single error type.
 */
export class FanoutProblemError extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  readonly instance?: string;
  readonly errors: ProblemFieldError[];

  constructor(p: { status: number; type: string; title: string; detail: string; instance?: string; errors?: ProblemFieldError[] }) {
    super(`${p.status} ${p.title}: ${p.detail}`);
    this.name = 'FanoutProblemError';
    this.status = p.status;
    this.type = p.type;
    this.title = p.title;
    this.detail = p.detail;
    this.instance = p.instance;
    this.errors = p.errors ?? [];
  }
}

/** Builds the error for a failed response from its already parsed body (JSON or text). */
export function problemFromBody(response: Response, body: unknown): FanoutProblemError {
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    const b = body as Record<string, unknown>;
    return new FanoutProblemError({
      status: typeof b.status === 'number' ? b.status : response.status,
      type: typeof b.type === 'string' ? b.type : 'about:blank',
      title: typeof b.title === 'string' ? b.title : response.statusText || `HTTP ${response.status}`,
      detail: typeof b.detail === 'string' ? b.detail : '',
      instance: typeof b.instance === 'string' ? b.instance : undefined,
      errors: Array.isArray(b.errors) ? (b.errors as ProblemFieldError[]) : [],
    });
  }
  const text = typeof body === 'string' ? body.slice(0, 500) : '';
  return new FanoutProblemError({ status: response.status, type: 'about:blank', title: response.statusText || `HTTP ${response.status}`, detail: text });
}

/** Reads a failed response's body (JSON when it parses, text otherwise) into the error. */
export async function problemFromResponse(response: Response): Promise<FanoutProblemError> {
  const text = await response.text().catch(() => '');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text as the detail
  }
  return problemFromBody(response, body);
}
