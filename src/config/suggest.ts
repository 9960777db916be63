/** "Did you mean" for configuration errors: the known names closest to a misspelt one. */

/**
 * The optimal string alignment distance (Levenshtein with adjacent transpositions, Damerau):
 * "lisen" → "listen" is 1, "bakcend" → "backend" is 1.
 */
export function editDistance(a: string, b: string): number {
  // Three rows are enough: a transposition looks two characters back.
  let before = new Array<number>(b.length + 1).fill(0);
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, (before[j - 2] as number) + 1);
      current.push(best);
    }
    before = previous;
    previous = current;
  }
  return previous[b.length] as number;
}

/**
 * The known names nearest to `word` (ignoring case), when near enough to be a likely typo: at most
 * 2 edits, 1 for words of 3 characters or fewer (any short word is a couple of edits from another).
 * Several when they tie.
 */
export function closest(word: string, known: Iterable<string>): string[] {
  const limit = word.length <= 3 ? 1 : 2;
  let best = limit + 1;
  let out: string[] = [];
  for (const candidate of known) {
    if (candidate === word) continue;
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance > limit) continue;
    if (distance < best) {
      best = distance;
      out = [candidate];
    } else if (distance === best) out.push(candidate);
  }
  return out.slice(0, 3);
}

/** ` (did you mean "x"?)`, ` (did you mean "x" or "y"?)`, or "" when nothing is near. */
export function didYouMean(word: string, known: Iterable<string>): string {
  const near = closest(word, known).map((k) => `"${k}"`);
  if (near.length === 0) return '';
  const list = near.length === 1 ? near[0] : `${near.slice(0, -1).join(', ')} or ${near[near.length - 1]}`;
  return ` (did you mean ${list}?)`;
}

/**
 * `no upstream named "bakend" (did you mean "backend"?)`; the known names are listed instead when
 * none is near (there are few of them in a file).
 */
export function unknownName(kind: string, name: string, known: readonly string[]): string {
  const hint = didYouMean(name, known) || (known.length > 0 ? ` (known: ${known.join(', ')})` : ` (none is defined)`);
  return `no ${kind} named "${name}"${hint}`;
}
