/**
 * One pull-request comment per purpose on GitHub, updated in place: the node script both the platform
 * repository's preview job and the dbt PR job's docs preview run (`node -e`). Each caller names its own
 * marker, so their comments never collide.
 */

/** What the comment is and where its body comes from. */
export interface GithubCommentArgs {
    /** Hidden marker the comment starts with (an HTML comment): how the job finds its own comment again. */
    marker: string;
    /** File (relative to the step's working directory) holding the whole body, marker first. */
    bodyFile: string;
    /** Text after the marker when the body file is missing (the step that writes it failed). */
    missingBody: string;
}

/**
 * Finds the job's own comment (posted by the workflow token's bot user, starting with the marker)
 * through the issues comments API, following the Link header's rel="next" pages on the API's own
 * origin only (the token goes with every request) and no redirect, then updates it in place (PATCH)
 * or creates it. Exits 1 with the reason on any failure. GITHUB_API_URL and GITHUB_REPOSITORY are
 * the runner's; GITHUB_TOKEN and PR_NUMBER are set by the step.
 */
export function githubUpsertCommentScript(args: GithubCommentArgs): string {
    return [
        "const fs = require('fs');",
        `const marker = ${JSON.stringify(args.marker)};`,
        `let body = fs.existsSync(${JSON.stringify(args.bodyFile)}) ? fs.readFileSync(${JSON.stringify(args.bodyFile)}, 'utf8') : marker + ${JSON.stringify(`\n${args.missingBody}`)};`,
        "// GitHub rejects comment bodies over 65536 characters.",
        "if (body.length > 65000) body = body.slice(0, 65000) + '\\n\\n(truncated; the full output is in the run log)';",
        "const e = process.env;",
        "const api = (e.GITHUB_API_URL || 'https://api.github.com').replace(/\\/$/, '');",
        "const base = `${api}/repos/${e.GITHUB_REPOSITORY}/issues`;",
        "const headers = { Authorization: `Bearer ${e.GITHUB_TOKEN}`, Accept: 'application/vnd.github+json', 'X-GitHub-Api-Version': '2022-11-28', 'Content-Type': 'application/json' };",
        "(async () => {",
        "  let url = `${base}/${e.PR_NUMBER}/comments?per_page=100`, mine;",
        "  while (url && !mine) {",
        "    if (new URL(url).origin !== new URL(api).origin) throw new Error(`refusing to follow a page link to another origin: ${url}`);",
        "    const res = await fetch(url, { headers, redirect: 'error' });",
        "    if (!res.ok) throw new Error(`listing PR comments: HTTP ${res.status}`);",
        "    mine = (await res.json()).find((c) => c.user && c.user.type === 'Bot' && (c.body || '').startsWith(marker));",
        "    const next = /<([^>]+)>;\\s*rel=\"next\"/.exec(res.headers.get('link') || '');",
        "    url = next && next[1];",
        "  }",
        "  const res = await fetch(mine ? `${base}/comments/${mine.id}` : `${base}/${e.PR_NUMBER}/comments`, { method: mine ? 'PATCH' : 'POST', headers, body: JSON.stringify({ body }), redirect: 'error' });",
        "  if (!res.ok) throw new Error(`${mine ? 'updating' : 'creating'} the PR comment: HTTP ${res.status}`);",
        "})().catch((err) => { console.error(err.message); process.exit(1); });",
    ].join("\n");
}
