import { UsageError } from './errors.js';
import type { CommandContext, CommandResult } from './commands.js';

export async function doctorCommand(_ctx: CommandContext): Promise<CommandResult> {
  throw new UsageError('doctor is being written');
}
