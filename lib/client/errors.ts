import type { Status } from '../api/index.js';

/**
 * An error answered by the apiserver (or synthesised for a failed request).
 * `reason` is metav1.Status.reason ('NotFound', 'Conflict', 'Expired', ...).
 */
export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly status?: Status;
  readonly verb: string;
  readonly resource: string;
  readonly retryAfterSeconds?: number;

  constructor(opts: {
    code: number;
    reason?: string;
    message: string;
    status?: Status;
    verb: string;
    resource: string;
    retryAfterSeconds?: number;
  }) {
    super(opts.message);
    this.name = 'ApiError';
    this.code = opts.code;
    this.reason = opts.reason ?? reasonForCode(opts.code);
    this.status = opts.status;
    this.verb = opts.verb;
    this.resource = opts.resource;
    this.retryAfterSeconds = opts.retryAfterSeconds;
  }

  /** Build from an HTTP status and the response body (JSON Status or plain text). */
  static fromResponse(code: number, body: string, verb: string, resource: string, retryAfter?: string | null): ApiError {
    let status: Status | undefined;
    try {
      const parsed = JSON.parse(body) as Status;
      if (parsed && parsed.kind === 'Status') status = parsed;
    } catch {
      // not JSON: keep the text as the message
    }
    const reason = status?.reason || reasonForCode(code);
    let message = status?.message || body.trim() || `HTTP ${code}`;
    if (code === 403 && !message.includes(verb)) {
      message = `forbidden: cannot ${verb} ${resource}: ${message}`;
    }
    const ra = retryAfter ? Number(retryAfter) : status?.details?.retryAfterSeconds;
    return new ApiError({
      code,
      reason,
      message,
      status,
      verb,
      resource,
      retryAfterSeconds: ra !== undefined && Number.isFinite(ra) ? ra : undefined,
    });
  }
}

function reasonForCode(code: number): string {
  switch (code) {
    case 400:
      return 'BadRequest';
    case 401:
      return 'Unauthorized';
    case 403:
      return 'Forbidden';
    case 404:
      return 'NotFound';
    case 405:
      return 'MethodNotAllowed';
    case 409:
      return 'Conflict';
    case 410:
      return 'Expired';
    case 422:
      return 'Invalid';
    case 429:
      return 'TooManyRequests';
    case 500:
      return 'InternalError';
    case 503:
      return 'ServiceUnavailable';
    case 504:
      return 'Timeout';
    default:
      return 'Unknown';
  }
}

function apiError(err: unknown): ApiError | undefined {
  return err instanceof ApiError ? err : undefined;
}

export const isNotFound = (err: unknown): boolean => apiError(err)?.code === 404;
/** A 409 whose reason is Conflict (stale resourceVersion), not AlreadyExists. */
export const isConflict = (err: unknown): boolean => {
  const e = apiError(err);
  return e?.code === 409 && e.reason !== 'AlreadyExists';
};
export const isAlreadyExists = (err: unknown): boolean => apiError(err)?.reason === 'AlreadyExists';
/** 410 Gone or reason Expired: the resourceVersion asked for is too old. */
export const isGone = (err: unknown): boolean => {
  const e = apiError(err);
  return e?.code === 410 || e?.reason === 'Expired' || e?.reason === 'Gone';
};
export const isTooManyRequests = (err: unknown): boolean => apiError(err)?.code === 429;
export const isForbidden = (err: unknown): boolean => apiError(err)?.code === 403;
export const isInvalid = (err: unknown): boolean => apiError(err)?.code === 422;
