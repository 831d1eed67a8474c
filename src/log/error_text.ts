/** What to log of a caught error: its message, never its stack. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
