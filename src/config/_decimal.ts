/**
 * Multiplies a decimal written as text ("1.5") by an integer factor exactly,
 * or returns undefined when the product is not a whole number. Floats would
 * turn "0.3m" into 17999.999… milliseconds.
 */
export function scaleDecimal(
  whole: string,
  fraction: string,
  factor: bigint,
): bigint | undefined {
  const scale = 10n ** BigInt(fraction.length);
  const scaled = (BigInt(whole) * scale + BigInt(fraction || "0")) * factor;
  return scaled % scale === 0n ? scaled / scale : undefined;
}
