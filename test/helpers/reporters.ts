/**
 * With FANOUT_TEST_REPORT_DIR set (CI does), each suite also writes a JSON report there, so
 * .ci/run can print the counts of every suite in one line.
 */
export function reporters(suite: string): { reporters?: string[]; outputFile?: Record<string, string> } {
  const dir = process.env.FANOUT_TEST_REPORT_DIR;
  if (!dir) return {};
  return { reporters: ['default', 'json'], outputFile: { json: `${dir}/vitest-${suite}.json` } };
}
