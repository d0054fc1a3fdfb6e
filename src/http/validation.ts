/** "topic: must not be empty" from a Standard Schema failure. */
export function firstIssue(issues: ReadonlyArray<{ message: string; path?: ReadonlyArray<PropertyKey | { key: PropertyKey }> }>): string {
  const issue = issues[0];
  if (!issue) return 'invalid request';
  const path = (issue.path ?? []).map((p) => (typeof p === 'object' ? String(p.key) : String(p))).join('.');
  return path ? `${path}: ${issue.message}` : issue.message;
}
