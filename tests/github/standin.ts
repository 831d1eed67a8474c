/**
 * The setup template whose job.sh stands in for the actions runner in test
 * VMs: it reports to the double at http://10.0.2.100:80/ (qemu guestfwd).
 */

import { fileURLToPath } from "node:url";

/** The stand-in template folder, for a test's `setup_template`. */
export const STANDIN_TEMPLATE_DIR = fileURLToPath(
  new URL("./standin-template", import.meta.url),
);
