/** Exit codes, the same for every command (product.md §5). */

export const EXIT_OK = 0;
/** Something failed at run time. */
export const EXIT_FAILURE = 1;
/** Bad usage or a bad config. */
export const EXIT_USAGE = 2;

/** Wrong arguments: reported as `forrest: message`, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
