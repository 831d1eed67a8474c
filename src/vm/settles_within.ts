/**
 * Whether `promise` settles within `ms` milliseconds: the stop ladders of
 * qemu and of its helpers give each step its time this way.
 */
export async function settlesWithin(
  promise: Promise<unknown>,
  ms: number,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise.then(() => true),
      new Promise<false>((resolve) =>
        timer = setTimeout(() => resolve(false), ms)
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
