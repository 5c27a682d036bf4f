import { readFileSync } from 'node:fs';
import { CliError, EXIT } from './exit-codes.ts';

/** A request body from a JSON file, or stdin for `-`; unreadable or invalid JSON is a usage error naming the file. */
export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new CliError(EXIT.usage, `${file}: cannot read (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(EXIT.usage, `${file}: not valid JSON`);
  }
}
