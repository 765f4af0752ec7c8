/**
 * RestClient (components/ci/rest.ts) against a tiny scripted local HTTP server: request shape,
 * Retry-After in seconds and as an HTTP date, the maxDelayMs cap, 5xx backoff, dropped connections,
 * timeouts, accepted statuses, and error messages that name the resource but never a credential
 * or a request body.
 */
import assert from "assert";
import * as http from "http";
import { listAll } from "../components/ci/bitbucket/common";
import { RestClient, RestClientOptions, retryAfterMs } from "../components/ci/rest";
import type { RestError } from "../components/ci/rest";
import { freePort } from "./support/postgres";
import { attack } from "./support/attacks";

const TOKEN = "rest-test-token-6b1e";
const RESOURCE = "repository variable DB_CI_HOST in acme/dbt";

/**
 * What the server does with the next request: answer, drop the connection, never answer, send the
 * headers and half a body then stall ("stall") or hang up ("break").
 */
type Step = { status: number; headers?: Record<string, string>; body?: unknown } | "drop" | "hang" | "stall" | "break";

interface Seen {
    method: string;
    url: string;
    headers: http.IncomingHttpHeaders;
    body: string;
}

describe("RestClient", () => {
    let server: http.Server;
    let base: string;
    let script: Step[] = [];
    let seen: Seen[] = [];

    before(async () => {
        const port = await freePort();
        server = http.createServer(async (req, res) => {
            const chunks: Buffer[] = [];
            for await (const c of req) chunks.push(c as Buffer);
            seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
            const step = script.shift() ?? { status: 200, body: { ok: true } };
            if (step === "drop") return void req.socket.destroy();
            if (step === "hang") return;
            if (step === "stall" || step === "break") {
                res.writeHead(200, { "Content-Type": "application/json", "Content-Length": "64" });
                res.write('{"values": [');
                if (step === "break") setTimeout(() => req.socket.destroy(), 20);
                return;
            }
            const payload = step.body === undefined ? "" : typeof step.body === "string" ? step.body : JSON.stringify(step.body);
            res.writeHead(step.status, { ...(payload ? { "Content-Type": "application/json" } : {}), ...step.headers });
            res.end(payload);
        });
        await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", () => resolve()));
        base = `http://127.0.0.1:${port}`;
    });
    after(async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    beforeEach(() => {
        script = [];
        seen = [];
    });

    /** A client whose waits are recorded instead of slept. */
    function client(opts: Partial<RestClientOptions> = {}) {
        const sleeps: number[] = [];
        const c = new RestClient({
            service: "Bitbucket",
            baseUrl: `${base}/2.0/`,
            authorization: () => `Bearer ${TOKEN}`,
            authHint: "Set BITBUCKET_TOKEN.",
            sleep: async (ms) => void sleeps.push(ms),
            ...opts,
        });
        return { c, sleeps };
    }

    async function failure(p: Promise<unknown>): Promise<RestError> {
        try {
            await p;
        } catch (e) {
            // By name, not instanceof: the type may become a factory-made Error (closure serialisation).
            assert.strictEqual((e as Error).name, "RestError", `expected a RestError, got ${e}`);
            return e as RestError;
        }
        throw new Error("expected a rejection");
    }

    it("retryAfterMs reads seconds and HTTP dates, and nothing else", () => {
        assert.strictEqual(retryAfterMs("5"), 5000);
        assert.strictEqual(retryAfterMs("0"), 0);
        assert.strictEqual(retryAfterMs(" 3 "), 3000);
        // RFC 9110 delay-seconds is 1*DIGIT: no sign, no fraction; anything else is ignored (back off instead).
        for (const bad of ["-1", "1.5", "+5", "5s", "0x10", "-Wed, 21 Oct 2026 07:28:30 GMT", "2026-10-21", "1"]) {
            if (bad !== "1") assert.strictEqual(retryAfterMs(bad), undefined, JSON.stringify(bad));
        }
        assert.strictEqual(retryAfterMs("Wednesday, 21-Oct-26 07:28:30 GMT", Date.parse("Wed, 21 Oct 2026 07:28:00 GMT")), 30_000, "RFC 850 date");
        assert.strictEqual(retryAfterMs("Wed Oct 21 07:28:30 2026", Date.parse("Wed, 21 Oct 2026 07:28:00 GMT")), 30_000, "asctime date (GMT)");
        const now = Date.parse("Wed, 21 Oct 2026 07:28:00 GMT");
        assert.strictEqual(retryAfterMs("Wed, 21 Oct 2026 07:28:30 GMT", now), 30_000);
        assert.strictEqual(retryAfterMs("Wed, 21 Oct 2026 07:27:00 GMT", now), 0, "a past date: retry now");
        assert.strictEqual(retryAfterMs("soon"), undefined);
        assert.strictEqual(retryAfterMs(""), undefined);
        assert.strictEqual(retryAfterMs(null), undefined);
    });

    it("sends JSON with Accept, Content-Type, Authorization and the query; relative paths join the base, absolute URLs are used as given", async () => {
        const { c } = client();
        script = [{ status: 201, body: { uuid: "{1}" } }, { status: 200, body: { values: [] } }, { status: 204 }];
        const created = await c.request({ method: "POST", path: "/repositories/acme/dbt/pipelines_config/variables/", query: { a: "1", skip: undefined, n: 2 }, json: { key: "K" }, resource: RESOURCE });
        assert.deepStrictEqual([created.status, created.body], [201, { uuid: "{1}" }]);
        assert.strictEqual(seen[0].method, "POST");
        assert.strictEqual(seen[0].url, "/2.0/repositories/acme/dbt/pipelines_config/variables/?a=1&n=2");
        assert.strictEqual(seen[0].headers.accept, "application/json");
        assert.strictEqual(seen[0].headers["content-type"], "application/json");
        assert.strictEqual(seen[0].headers.authorization, `Bearer ${TOKEN}`);
        assert.strictEqual(seen[0].body, '{"key":"K"}');

        await c.request({ method: "GET", path: `${base}/2.0/repositories/acme/dbt/environments/?page=2`, resource: RESOURCE });
        assert.strictEqual(seen[1].url, "/2.0/repositories/acme/dbt/environments/?page=2");
        assert.strictEqual(seen[1].headers["content-type"], undefined, "no body, no content type");

        const empty = await c.request({ method: "DELETE", path: "x", resource: RESOURCE });
        assert.deepStrictEqual([empty.status, empty.body], [204, undefined]);
    });

    it("429 with Retry-After in seconds waits exactly that long", async () => {
        const { c, sleeps } = client();
        script = [{ status: 429, headers: { "Retry-After": "3" } }, { status: 200, body: {} }];
        assert.strictEqual((await c.request({ method: "GET", path: "x", resource: RESOURCE })).status, 200);
        assert.deepStrictEqual(sleeps, [3000]);
    });

    it("429 with Retry-After as an HTTP date waits until that time", async () => {
        const { c, sleeps } = client();
        script = [{ status: 429, headers: { "Retry-After": new Date(Date.now() + 20_000).toUTCString() } }, { status: 200, body: {} }];
        await c.request({ method: "GET", path: "x", resource: RESOURCE });
        assert.strictEqual(sleeps.length, 1);
        // HTTP dates have whole seconds: between 19 and 20 s, less the time the request took.
        assert.ok(sleeps[0] >= 18_000 && sleeps[0] <= 20_000, `waited ${sleeps[0]} ms`);
    });

    it("every wait, Retry-After included, is capped at maxDelayMs", async () => {
        const { c, sleeps } = client({ maxDelayMs: 5000 });
        script = [{ status: 503, headers: { "Retry-After": "120" } }, { status: 429, headers: { "Retry-After": new Date(Date.now() + 3_600_000).toUTCString() } }, { status: 200, body: {} }];
        await c.request({ method: "GET", path: "x", resource: RESOURCE });
        assert.deepStrictEqual(sleeps, [5000, 5000]);
    });

    it("5xx without Retry-After backs off exponentially from baseDelayMs with jitter, capped at maxDelayMs", async () => {
        const { c, sleeps } = client({ baseDelayMs: 100, maxDelayMs: 300, maxAttempts: 6 });
        script = [{ status: 500 }, { status: 502 }, { status: 503 }, { status: 504 }, { status: 200, body: {} }];
        await c.request({ method: "PUT", path: "x", json: {}, resource: RESOURCE });
        assert.strictEqual(sleeps.length, 4);
        const within = (ms: number, lo: number, hi: number) => assert.ok(ms >= lo && ms <= hi, `${ms} not in [${lo}, ${hi}] (all: ${sleeps})`);
        within(sleeps[0], 50, 100);
        within(sleeps[1], 100, 200);
        within(sleeps[2], 200, 300);
        assert.strictEqual(sleeps[3], 300);
        assert.strictEqual(seen.length, 5);
    });

    it("gives up after maxAttempts of 5xx with an error naming the service, path and resource", async () => {
        const { c, sleeps } = client({ maxAttempts: 3 });
        script = [0, 1, 2].map(() => ({ status: 500, body: { type: "error", error: { message: "Something broke" } } }));
        const e = await failure(c.request({ method: "POST", path: "repositories/acme/dbt/pipelines_config/variables/", json: {}, resource: RESOURCE }));
        assert.strictEqual(e.status, 500);
        assert.strictEqual(e.resource, RESOURCE);
        assert.strictEqual(e.message, `Bitbucket POST /2.0/repositories/acme/dbt/pipelines_config/variables/ (${RESOURCE}): HTTP 500. Something broke`);
        assert.deepStrictEqual([seen.length, sleeps.length], [3, 2]);
    });

    it("a dropped connection is retried; dropped every time, it gives up with the network error", async () => {
        const { c, sleeps } = client();
        script = ["drop", { status: 201, body: { uuid: "{1}" } }];
        assert.strictEqual((await c.request({ method: "POST", path: "x", json: {}, resource: RESOURCE })).status, 201);
        assert.deepStrictEqual([seen.length, sleeps.length], [2, 1]);

        const twice = client({ maxAttempts: 2 });
        script = ["drop", "drop"];
        const e = await failure(twice.c.request({ method: "POST", path: "x", json: {}, resource: RESOURCE }));
        assert.strictEqual(e.status, undefined);
        assert.match(e.message, new RegExp(`^Bitbucket POST /2.0/x \\(${RESOURCE}\\): gave up after 2 attempts \\(last: network error: `));
        assert.strictEqual(twice.sleeps.length, 1, "no wait after the last attempt");
    });

    it("a request that never answers times out and is retried like a dropped one", async () => {
        const { c } = client({ timeoutMs: 100, maxAttempts: 2 });
        script = ["hang", "hang"];
        const e = await failure(c.request({ method: "GET", path: "x", resource: RESOURCE }));
        assert.match(e.message, /gave up after 2 attempts \(last: network error: /);
        assert.strictEqual(seen.length, 2);
    });

    it("accept: listed statuses come back as responses; others throw at once (4xx is not retried)", async () => {
        const { c, sleeps } = client();
        script = [{ status: 404, body: { error: { message: "No such variable" } } }, { status: 409, body: { error: { message: "exists" } } }];
        const missing = await c.request({ method: "GET", path: "x", resource: RESOURCE, accept: [404] });
        assert.deepStrictEqual([missing.status, missing.body], [404, { error: { message: "No such variable" } }]);
        assert.strictEqual((await c.request({ method: "POST", path: "x", json: {}, resource: RESOURCE, accept: [404, 409] })).status, 409);

        script = [{ status: 404, body: { type: "error", error: { message: "No such variable" } } }, { status: 409, body: {} }];
        const e = await failure(c.request({ method: "GET", path: "x", resource: RESOURCE }));
        assert.strictEqual(e.status, 404);
        assert.strictEqual(e.message, `Bitbucket GET /2.0/x (${RESOURCE}): ${RESOURCE} was not found (404), or the credentials cannot see it. No such variable`);
        assert.strictEqual((await failure(c.request({ method: "POST", path: "x", json: {}, resource: RESOURCE, accept: [404] }))).status, 409);
        assert.deepStrictEqual(sleeps, []);
    });

    it("401 and 403 messages carry the hint; no error message contains the Authorization value or the request body", async () => {
        const { c } = client({ maxAttempts: 2 });
        const secretBody = { key: "DB_CI_PWD", value: "body-secret-4411" };
        script = [{ status: 401, body: { type: "error", error: { message: "Access token expired or invalid." } } }];
        const e401 = await failure(c.request({ method: "PUT", path: "x", json: secretBody, resource: RESOURCE }));
        assert.strictEqual(e401.message, `Bitbucket PUT /2.0/x (${RESOURCE}): Bitbucket rejected the credentials (401 Unauthorized). Set BITBUCKET_TOKEN. Access token expired or invalid.`);
        script = [{ status: 403, body: { type: "error", error: { message: "Your credentials lack one or more required privilege scopes." } } }];
        const e403 = await failure(c.request({ method: "PUT", path: "x", json: secretBody, resource: RESOURCE }));
        assert.match(e403.message, new RegExp(`the credentials lack permission for ${RESOURCE} \\(403 Forbidden\\)\\. Set BITBUCKET_TOKEN\\.`));
        script = [{ status: 400, body: "plain text problem" }];
        const e400 = await failure(c.request({ method: "POST", path: "x", json: secretBody, resource: RESOURCE }));
        assert.match(e400.message, /HTTP 400\. plain text problem$/);
        script = ["drop", "drop"];
        const eNet = await failure(c.request({ method: "POST", path: "x", json: secretBody, resource: RESOURCE }));
        for (const e of [e401, e403, e400, eNet]) {
            assert.ok(!e.message.includes(TOKEN) && !e.message.includes("Bearer"), e.message);
            assert.ok(!e.message.includes("body-secret-4411"), e.message);
        }
        assert.ok(seen.every((s) => s.headers.authorization === `Bearer ${TOKEN}`), "the token was sent, just never echoed");
    });

    describe("redirects (issue 11 #6): never to another origin", () => {
        let other: http.Server;
        let otherBase: string;
        let otherSeen: Seen[] = [];
        before(async () => {
            const port = await freePort();
            other = http.createServer(async (req, res) => {
                const chunks: Buffer[] = [];
                for await (const c of req) chunks.push(c as Buffer);
                otherSeen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
                res.writeHead(201, { "Content-Type": "application/json" });
                res.end(JSON.stringify({ uuid: "{evil}" }));
            });
            await new Promise<void>((resolve) => other.listen(port, "127.0.0.1", () => resolve()));
            otherBase = `http://127.0.0.1:${port}`;
        });
        after(async () => {
            other.closeAllConnections();
            await new Promise<void>((resolve) => other.close(() => resolve()));
        });
        beforeEach(() => {
            otherSeen = [];
        });

        for (const status of [307, 308, 301, 302, 303]) {
            it(`a ${status} to another origin fails naming the target; the other host gets neither the body nor the token, and its 2xx never counts`, async () => {
                const tried = attack(`a ${status} redirect of a POST to another origin`);
                const { c } = client();
                script = [{ status, headers: { Location: `${otherBase}/2.0/capture` } }];
                const e = await failure(c.request({ method: "POST", path: "repositories/acme/dbt/pipelines_config/variables/", json: { key: "DB_PROD_PWD", value: "redirect-secret-77" }, resource: RESOURCE }));
                assert.ok(e.message.includes(`redirect to another origin (${otherBase}/2.0/capture)`), e.message);
                assert.ok(e.message.includes(RESOURCE) && !e.message.includes("redirect-secret-77"), e.message);
                assert.deepStrictEqual(otherSeen, [], "nothing reached the other origin");
                assert.strictEqual(seen.length, 1, "not retried");
                tried.blocked();
            });
        }

        it("a GET redirected to another origin (a pagination hop) fails too; another port on the same host is another origin", async () => {
            const tried = attack("a GET redirected to another origin (a pagination hop) fails too; another port on the same host is another origin");
            const { c } = client();
            script = [{ status: 302, headers: { Location: `${otherBase}/2.0/x` } }];
            const e = await failure(c.request({ method: "GET", path: "x", resource: RESOURCE }));
            assert.match(e.message, /redirect to another origin/);
            assert.deepStrictEqual(otherSeen, []);
            tried.blocked();
        });

        it("same origin: 307/308 are followed re-sending method and body; a 301/302/303 of a write is not turned into a GET", async () => {
            const { c } = client();
            script = [{ status: 308, headers: { Location: "/2.0/moved" } }, { status: 200, body: { ok: 1 } }];
            const moved = await c.request({ method: "PUT", path: "x", json: { key: "K" }, resource: RESOURCE });
            assert.deepStrictEqual(moved.body, { ok: 1 });
            assert.deepStrictEqual(seen.map((r) => [r.method, r.url, r.body, r.headers.authorization]), [
                ["PUT", "/2.0/x", '{"key":"K"}', `Bearer ${TOKEN}`],
                ["PUT", "/2.0/moved", '{"key":"K"}', `Bearer ${TOKEN}`],
            ]);
            seen = [];
            script = [{ status: 302, headers: { Location: "/2.0/elsewhere" } }];
            const e = await failure(c.request({ method: "POST", path: "x", json: { key: "K" }, resource: RESOURCE }));
            assert.match(e.message, /HTTP 302 redirect of a POST to \/2\.0\/elsewhere.*not followed/);
            assert.strictEqual(seen.length, 1);
            script = [{ status: 301, headers: { Location: "/2.0/y" } }, { status: 200, body: { got: "y" } }];
            assert.deepStrictEqual((await c.request({ method: "GET", path: "x", resource: RESOURCE })).body, { got: "y" });
        });

        it("an absolute URL on another origin (e.g. a page link) is refused before anything is sent", async () => {
            const tried = attack("an absolute URL on another origin (e.g. a page link) is refused before anything is sent");
            const { c } = client();
            const e = await failure(c.request({ method: "GET", path: `${otherBase}/2.0/list?page=2`, resource: RESOURCE }));
            assert.ok(e.message.includes(`${otherBase} is not the API's origin (${base})`), e.message);
            assert.deepStrictEqual([seen.length, otherSeen.length], [0, 0]);
            tried.blocked();
        });

        it("a redirect loop on the same origin stops after maxRedirects", async () => {
            const { c } = client({ maxRedirects: 3 });
            script = [0, 1, 2, 3, 4].map(() => ({ status: 307, headers: { Location: "/2.0/loop" } }));
            assert.match((await failure(c.request({ method: "GET", path: "x", resource: RESOURCE }))).message, /more than 3 redirects/);
            assert.strictEqual(seen.length, 4);
        });
    });

    describe("deadline, bodies, Retry-After, pages (issue 11 #6)", () => {
        it("a silent server costs at most the overall deadline, not attempts × timeout, and the error says so", async () => {
            const { c } = client({ timeoutMs: 400, maxAttempts: 6, deadlineMs: 700 });
            script = ["hang", "hang", "hang", "hang", "hang", "hang"];
            const started = Date.now();
            const e = await failure(c.request({ method: "GET", path: "x", resource: RESOURCE }));
            const took = Date.now() - started;
            assert.ok(took < 1200, `took ${took} ms`);
            assert.match(e.message, /no answer within the overall deadline of 1 s \(2 attempts; last: network error: timed out\)/);
            assert.ok(e.message.includes(RESOURCE));
        });

        it("no wait runs past the deadline, Retry-After included", async () => {
            const { c, sleeps } = client({ deadlineMs: 2000 });
            script = [{ status: 503, headers: { "Retry-After": "60" } }, { status: 200, body: {} }];
            await c.request({ method: "GET", path: "x", resource: RESOURCE });
            assert.strictEqual(sleeps.length, 1);
            assert.ok(sleeps[0] <= 2000 && sleeps[0] > 1000, `waited ${sleeps[0]} ms`);
        });

        it("Retry-After: -1 and other garbage are ignored: the client backs off as without the header", async () => {
            const { c, sleeps } = client({ baseDelayMs: 400 });
            script = [{ status: 429, headers: { "Retry-After": "-1" } }, { status: 503, headers: { "Retry-After": "soon" } }, { status: 429, headers: { "Retry-After": "1.5" } }, { status: 200, body: {} }];
            await c.request({ method: "GET", path: "x", resource: RESOURCE });
            assert.strictEqual(sleeps.length, 3);
            assert.ok(sleeps[0] >= 200 && sleeps[0] <= 400, `backoff, not 0 ms: ${sleeps}`);
            assert.ok(sleeps[1] >= 400 && sleeps[1] <= 800, `${sleeps}`);
            assert.ok(sleeps[2] >= 800 && sleeps[2] <= 1600, `${sleeps}`);
        });

        it("a body that stalls or breaks off is retried; if it keeps failing the error names the body read", async () => {
            const { c, sleeps } = client({ timeoutMs: 300 });
            script = ["stall", "break", { status: 200, body: { values: [1] } }];
            assert.deepStrictEqual((await c.request({ method: "GET", path: "x", resource: RESOURCE })).body, { values: [1] });
            assert.deepStrictEqual([seen.length, sleeps.length], [3, 2]);

            const twice = client({ timeoutMs: 300, maxAttempts: 2 });
            script = ["stall", "break"];
            const e = await failure(twice.c.request({ method: "POST", path: "x", json: {}, resource: RESOURCE }));
            assert.match(e.message, new RegExp(`^Bitbucket POST /2.0/x \\(${RESOURCE}\\): gave up after 2 attempts \\(last: reading the HTTP 200 response body failed: `));
        });

        it("a create whose answer was lost reports maybeApplied, so a 409 on its retry can be recognised as its own", async () => {
            const { c } = client();
            script = ["drop", { status: 409, body: {} }];
            const r = await c.request({ method: "POST", path: "x", json: {}, resource: RESOURCE, accept: [409] });
            assert.deepStrictEqual([r.status, r.attempts, r.maybeApplied], [409, 2, true]);
            script = [{ status: 429 }, { status: 409, body: {} }];
            const throttled = await c.request({ method: "POST", path: "x", json: {}, resource: RESOURCE, accept: [409] });
            assert.deepStrictEqual([throttled.attempts, throttled.maybeApplied], [2, false], "a 429 was not applied");
        });

        it("pagination is capped (maxPages) and a page link handed out twice stops the listing", async () => {
            const { c } = client({ maxPages: 3 });
            const page = (n: number) => ({ status: 200, body: { values: [n], next: `${base}/2.0/list?page=${n + 1}` } });
            script = [page(1), page(2), page(3), page(4)];
            const e = await failure(listAll(c, "list", RESOURCE));
            assert.match(e.message, /more than 3 pages; stopping/);
            assert.strictEqual(seen.length, 3);
            seen = [];
            const loop = { status: 200, body: { values: [1], next: `${base}/2.0/list?page=2` } };
            script = [loop, loop, loop];
            assert.match((await failure(listAll(client().c, "list", RESOURCE))).message, /same page link or continuation token twice/);
            assert.strictEqual(seen.length, 2);
            const direct = client({ maxPages: 2 }).c;
            assert.strictEqual(direct.maxPages, 2);
            assert.throws(() => direct.checkPage(3, "GET /_apis/distributedtask/variablegroups", RESOURCE), /more than 2 pages/);
            const tokens: string[] = [];
            direct.checkPage(1, "GET x", RESOURCE, tokens, "tok-a");
            assert.throws(() => direct.checkPage(2, "GET x", RESOURCE, tokens, "tok-a"), /twice/);
        });
    });

    it("long API messages are shortened", async () => {
        const { c } = client({ maxAttempts: 1 });
        script = [{ status: 500, body: { error: { message: "x".repeat(1000) } } }];
        const e = await failure(c.request({ method: "GET", path: "x", resource: RESOURCE }));
        assert.ok(e.message.endsWith("…") && e.message.length < 450, `${e.message.length} chars`);
    });
});
