/**
 * The setup template whose job.sh stands in for the actions runner in test
 * VMs: it reports to the double at http://10.0.2.100:80/ (qemu guestfwd).
 */

import { fileURLToPath } from "node:url";

/** The stand-in template folder, for a test's `setup_template`. */
export const STANDIN_TEMPLATE_DIR = fileURLToPath(
  new URL("./standin-template", import.meta.url),
);

/**
 * What the stand-in does from a test VM, done from the host: POSTs a JIT
 * config to the double's `/_guest/PATH` (online, take, done?exit=N).
 */
export async function standinCall(
  double: { readonly url: string },
  path: string,
  config: string,
): Promise<{ status: number; text: string }> {
  const origin = new URL(double.url).origin;
  const answer = await fetch(`${origin}/_guest/${path}`, {
    method: "POST",
    body: config,
  });
  return { status: answer.status, text: await answer.text() };
}
