import { UsageError } from './errors.js';
import type { CommandContext, CommandResult } from './commands.js';

export async function metricsCommand(_ctx: CommandContext): Promise<CommandResult> {
  throw new UsageError('metrics is being written');
}
