/**
 * The metrics the API uses: the registry `/metrics` serves and the HTTP duration histogram its
 * middleware fills. `Metrics` (src/main/metrics.ts) implements it; the API needs nothing else of
 * the process layer.
 */

/** Where request durations go: `fanout_http_request_duration_seconds`. */
export interface HttpDurations {
  observe(labels: { method: string; route: string; status: number }, seconds: number): void;
}

export interface ApiMetrics {
  /** the Prometheus registry, served as text by GET /metrics */
  readonly registry: { metrics(): Promise<string>; readonly contentType: string };
  readonly httpDuration: HttpDurations;
}
