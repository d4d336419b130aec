/**
 * How a server process writes its log: one JSON object a line (for log collectors), or one
 * readable line an event for a person at a terminal.
 */
export type LogFormat = 'json' | 'pretty';

export interface LogFormatInputs {
  /** FANOUT_LOG_FORMAT, when set: always wins */
  override?: LogFormat;
  /** whether the process's stdout is a terminal */
  stdoutIsTty: boolean;
  /** a Kubernetes pod or a container runtime that says so: logs go to a collector, never to a person */
  inContainer: boolean;
}

/** JSON unless a person reads stdout directly: a terminal, outside a container. */
export function chooseLogFormat(i: LogFormatInputs): LogFormat {
  if (i.override) return i.override;
  return i.stdoutIsTty && !i.inContainer ? 'pretty' : 'json';
}
