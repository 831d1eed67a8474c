/**
 * What must never appear in a log line, whoever logs it: tokens, keys and
 * JIT configs. Secrets held in a Secret print as `[redacted]` already; these
 * rules catch the ones that slip through as plain strings, by the name of
 * the property they travel in and by their look in the formatted line.
 */

import {
  DEFAULT_REDACT_FIELDS,
  type FieldPatterns,
  JWT_PATTERN,
  type RedactionPatterns,
} from "@logtape/redaction";

export const REDACTED = "[redacted]";

/** Property names whose values are dropped from records. */
export const SECRET_FIELDS: FieldPatterns = [
  ...DEFAULT_REDACT_FIELDS,
  /jit/i,
  /private/i,
  /pem/i,
];

/** Shapes of secrets, replaced in the formatted line. */
export const SECRET_PATTERNS: RedactionPatterns = [
  // GitHub tokens: installation (ghs_), personal (ghp_, github_pat_), OAuth,
  // user-to-server and refresh tokens.
  {
    pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})/g,
    replacement: REDACTED,
  },
  // The App's JWT, and any other.
  { pattern: JWT_PATTERN.pattern, replacement: REDACTED },
  {
    pattern:
      /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
    replacement: REDACTED,
  },
  // Authorization headers in any spelling.
  {
    pattern: /\b(Bearer|token|Basic)\s+[A-Za-z0-9._~+/-]{12,}=*/gi,
    replacement: `$1 ${REDACTED}`,
  },
  // JIT configs are long base64 blobs; nothing else we log looks like one.
  { pattern: /[A-Za-z0-9+/]{120,}={0,2}/g, replacement: REDACTED },
];
