/**
 * MAC addresses for extra network cards. A fresh random address per VM would
 * make a DHCP server on the card's network hand out a new lease each run
 * until its range runs out; addresses given back are handed out again
 * (last in, first out, like the original), so successive VMs reuse leases.
 * Addresses are locally administered unicast, never a vendor's.
 */

export class MacPool {
  readonly #free: string[] = [];
  readonly #taken = new Set<string>();
  readonly #random: (bytes: Uint8Array) => void;

  constructor(
    random: (bytes: Uint8Array) => void = (b) => crypto.getRandomValues(b),
  ) {
    this.#random = random;
  }

  /** An address no running VM of this pool has. */
  take(): string {
    const reused = this.#free.pop();
    if (reused !== undefined) {
      this.#taken.add(reused);
      return reused;
    }
    for (;;) {
      const bytes = new Uint8Array(6);
      this.#random(bytes);
      // Locally administered (bit 1 set), unicast (bit 0 clear).
      bytes[0] = (bytes[0]! | 0x02) & 0xfe;
      const mac = Array.from(bytes, (b) => b.toString(16).padStart(2, "0"))
        .join(":");
      // Nothing is free here (pop found nothing): only those taken clash.
      if (!this.#taken.has(mac)) {
        this.#taken.add(mac);
        return mac;
      }
    }
  }

  /** Gives an address back when its VM has ended; others are ignored. */
  give(mac: string): void {
    if (this.#taken.delete(mac)) this.#free.push(mac);
  }
}
