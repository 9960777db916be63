/** Which content types are compressed: exact media types and families ("text/*"), compiled once. */

export type TypeMatcher = (contentType: string | string[] | undefined) => boolean;

export function compileTypes(types: readonly string[]): TypeMatcher {
  const exact = new Set<string>();
  const families: string[] = [];
  for (const type of types) {
    const lower = type.toLowerCase();
    if (lower.endsWith('/*')) families.push(lower.slice(0, -1));
    else exact.add(lower);
  }
  return (contentType) => {
    if (contentType === undefined || Array.isArray(contentType)) return false;
    const semi = contentType.indexOf(';');
    const media = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
    if (exact.has(media)) return true;
    for (const family of families) if (media.startsWith(family)) return true;
    return false;
  };
}
