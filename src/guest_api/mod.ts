/**
 * The guest API: run tokens, the runs they name, and the artifact upload
 * that guests reach at FORREST_API_URL.
 */
export { GuestApi, type GuestApiOutcome } from "./server.ts";
export { sweepUploads } from "./upload.ts";
export { newRunToken, RUN_TOKEN_LENGTH } from "./run_token.ts";
export { storeFolder } from "./runs.ts";
