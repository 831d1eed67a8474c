/**
 * JOBDATA after boot (product.md §13): a VM boots without its job's disk,
 * says over its ready port that it waits for it, and gets it hot-plugged
 * once its runner is registered. Registration and boot overlap; a warm
 * machine boots long before it has a job at all.
 */

import { JOBDATA_PORT, READY_PORT_ID } from "./argv.ts";
import type { QmpClient, QmpEvent } from "./qmp.ts";

/** qemu's ids for the disk once plugged. */
const NODE = "jobdata";
const DEVICE = "jobdata-disk";

/**
 * Plugs the FAT image at `path` in as the guest's JOBDATA disk. The guest's
 * mount unit waits for its label, so this may come at any time after qemu
 * started, also before the guest's kernel found the port.
 */
export async function plugJobData(qmp: QmpClient, path: string) {
  await qmp.execute("blockdev-add", {
    "node-name": NODE,
    driver: "raw",
    file: { driver: "file", filename: path },
    discard: "unmap",
  });
  await qmp.execute("device_add", {
    driver: "virtio-blk-pci",
    drive: NODE,
    bus: JOBDATA_PORT,
    id: DEVICE,
  });
}

/** Whether an event is the guest opening its ready port. */
export function isReadyEvent(event: QmpEvent): boolean {
  const data = event.data as { id?: unknown; open?: unknown } | undefined;
  return event.event === "VSERPORT_CHANGE" && data?.id === READY_PORT_ID &&
    data?.open === true;
}
