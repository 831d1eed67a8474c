/** Plain text tables for terminals: padded columns, numbers aligned right. */

export type Align = "left" | "right";

export interface FormatTableOptions {
  /** Per column; left by default. */
  readonly align?: readonly Align[];
}

/** Lines of a table with `header` on top and two spaces between columns. */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  options: FormatTableOptions = {},
): string[] {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length))
  );
  const line = (cells: readonly string[]) =>
    widths.map((width, column) => {
      const cell = cells[column] ?? "";
      return options.align?.[column] === "right"
        ? cell.padStart(width)
        : cell.padEnd(width);
    }).join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}
