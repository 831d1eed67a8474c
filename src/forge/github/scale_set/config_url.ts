/**
 * The config URL that names a scope to the Actions service
 * (`runner-registration`'s `url`): the scope's page on GitHub's web side,
 * derived from the API's address as actions/scaleset derives the API's
 * from it (config.go): api.github.com ↔ github.com, api.HOST (GHE.com) ↔
 * HOST, HOST/api/v3 (GHES) ↔ HOST; any other address is used as it is.
 */

import type { Scope } from "../../../config/mod.ts";

export function webUrlOf(apiUrl: string): string {
  const url = new URL(apiUrl);
  const path = url.pathname.replace(/\/+$/, "");
  if (path.endsWith("/api/v3")) {
    url.pathname = path.slice(0, -"/api/v3".length) || "/";
  } else if (url.hostname.startsWith("api.")) {
    url.hostname = url.hostname.slice("api.".length);
  }
  return url.toString().replace(/\/+$/, "");
}

export function configUrlOf(apiUrl: string, scope: Scope): string {
  const web = webUrlOf(apiUrl);
  const path = (...parts: string[]) =>
    parts.map((part) => encodeURIComponent(part)).join("/");
  switch (scope.kind) {
    case "repository":
      return `${web}/${path(scope.owner, scope.repo)}`;
    case "organization":
      return `${web}/${path(scope.org)}`;
    case "enterprise":
      return `${web}/${path("enterprises", scope.enterprise)}`;
  }
}
