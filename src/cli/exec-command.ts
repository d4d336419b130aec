import { ConfigError, loadExecConfig } from '../config/config.js';
import { EXEC_EXIT, execItem } from '../worker/item-exec.js';

/**
 * `fanout exec -- CMD [ARGS...]`: reads its environment (FANOUT_API_URL, FANOUT_BATCH_ID,
 * FANOUT_TOKEN, JOB_COMPLETION_INDEX, FANOUT_INDEX_OFFSET), runs one item and answers the exit
 * code: CMD's own, 128+signal when CMD was killed, 1 when the API could not be used, 2 for a
 * usage or environment error. Everything it prints is one `fanout exec:` line on stderr.
 */
export async function execCommand(argv: string[]): Promise<number> {
  const say = (line: string) => process.stderr.write(`fanout exec: ${line}\n`);
  if (argv.length === 0) {
    say('no command given; usage: fanout exec -- CMD [ARGS...]');
    return EXEC_EXIT.usage;
  }
  let config;
  try {
    config = loadExecConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    say(error.message);
    return EXEC_EXIT.usage;
  }
  return execItem(config, argv, { say });
}
