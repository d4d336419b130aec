/** One field-level error of a problem: a JSON pointer into the request, and for NDJSON the line. */
export interface ProblemFieldError {
  pointer: string;
  detail: string;
  /** NDJSON uploads: the 1-based line of the body the error is on */
  line?: number;
}

/**
 * An RFC 9457 problem answered by the API (application/problem+json), or an error answer that
 * was not one, turned into the same shape so callers handle a single error type.
 */
export class FanoutProblemError extends Error {
  /** the HTTP status of the answer */
  readonly status: number;
  readonly type: string;
  readonly title: string;
  /** empty when the problem had none */
  readonly detail: string;
  readonly instance?: string;
  readonly errors: ProblemFieldError[];

  constructor(p: { status: number; type?: string; title: string; detail?: string; instance?: string; errors?: ProblemFieldError[] }) {
    super(p.detail ? `${p.status} ${p.title}: ${p.detail}` : `${p.status} ${p.title}`);
    this.name = 'FanoutProblemError';
    this.status = p.status;
    this.type = p.type ?? 'about:blank';
    this.title = p.title;
    this.detail = p.detail ?? '';
    this.instance = p.instance;
    this.errors = p.errors ?? [];
  }
}

function isFieldError(value: unknown): value is ProblemFieldError {
  return !!value && typeof value === 'object' && typeof (value as ProblemFieldError).detail === 'string';
}

/**
 * Builds the error for a failed response from its already read body: a JSON object with a
 * `title` is a problem; anything else (a proxy's page, plain text) keeps its first line as the
 * detail, so the error still says something.
 */
export function problemFromBody(response: Response, body: unknown): FanoutProblemError {
  const fallbackTitle = response.statusText || `HTTP ${response.status}`;
  if (body && typeof body === 'object' && typeof (body as { title?: unknown }).title === 'string') {
    const b = body as Record<string, unknown>;
    return new FanoutProblemError({
      status: response.status,
      type: typeof b.type === 'string' ? b.type : undefined,
      title: b.title as string,
      detail: typeof b.detail === 'string' ? b.detail : undefined,
      instance: typeof b.instance === 'string' ? b.instance : undefined,
      errors: Array.isArray(b.errors) ? b.errors.filter(isFieldError) : [],
    });
  }
  const text = typeof body === 'string' ? body : body === undefined ? '' : JSON.stringify(body);
  const firstLine = text.trim().split('\n', 1)[0]?.slice(0, 200);
  return new FanoutProblemError({ status: response.status, title: fallbackTitle, detail: firstLine || `HTTP ${response.status}` });
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
