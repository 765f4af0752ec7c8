/**
 * A matcher for CloudWatch Logs JSON filter patterns, so the patterns the component declares can be
 * tested against real dbt log lines (moto stores filters but never evaluates them). It follows the
 * documented syntax ("Using filter patterns to match terms in JSON log events"):
 *   { SELECTOR OP VALUE }       OP: = != for strings (`*` wildcard, `%regex%`), = != < > <= >= for numbers
 *   { SELECTOR IS TRUE|FALSE|NULL }, { SELECTOR EXISTS }, { SELECTOR NOT EXISTS }
 *   && and || (&& binds tighter, as in the documentation's mixed example), parentheses
 *   selectors $.a.b, $.a[0].b, $.a.* (any element/member)
 * A selector that does not resolve never matches `=`, `!=` or a comparison (CloudWatch: the field must exist).
 */

type Node =
    | { kind: "and" | "or"; left: Node; right: Node }
    | { kind: "cmp"; path: Segment[]; op: string; value: Literal }
    | { kind: "is"; path: Segment[]; what: "TRUE" | "FALSE" | "NULL" }
    | { kind: "exists"; path: Segment[]; negate: boolean };
type Segment = string | number | "*";
type Literal = { type: "string"; text: string; quoted: boolean } | { type: "number"; value: number } | { type: "regex"; source: string };

/** A parsed pattern: `matches(line)` says whether one log event (a JSON line) matches. */
export interface CompiledFilter {
    pattern: string;
    matches(line: string): boolean;
}

export function compileFilterPattern(pattern: string): CompiledFilter {
    const p = new Parser(pattern);
    const root = p.pattern();
    return {
        pattern,
        matches(line: string): boolean {
            let event: unknown;
            try {
                event = JSON.parse(line);
            } catch {
                return false; // A JSON pattern never matches a non-JSON event.
            }
            if (event === null || typeof event !== "object") return false;
            return evaluate(root, event);
        },
    };
}

/** Lines of `text` (one event per line) that match `pattern`. */
export function matchingLines(pattern: string, text: string): string[] {
    const f = compileFilterPattern(pattern);
    return text.split("\n").filter((l) => l.trim() !== "" && f.matches(l));
}

class Parser {
    private i = 0;
    constructor(private readonly s: string) {}

    pattern(): Node {
        this.ws();
        this.expect("{");
        const n = this.or();
        this.ws();
        this.expect("}");
        this.ws();
        if (this.i !== this.s.length) this.fail("unexpected text after the closing brace");
        return n;
    }

    private or(): Node {
        let left = this.and();
        while (this.take("||")) left = { kind: "or", left, right: this.and() };
        return left;
    }

    private and(): Node {
        let left = this.term();
        while (this.take("&&")) left = { kind: "and", left, right: this.term() };
        return left;
    }

    private term(): Node {
        if (this.take("(")) {
            const n = this.or();
            this.ws();
            this.expect(")");
            return n;
        }
        const path = this.selector();
        this.ws();
        if (this.takeWord("IS")) {
            for (const what of ["TRUE", "FALSE", "NULL"] as const) if (this.takeWord(what)) return { kind: "is", path, what };
            this.fail("expected TRUE, FALSE or NULL after IS");
        }
        if (this.takeWord("NOT")) {
            if (!this.takeWord("EXISTS")) this.fail("expected EXISTS after NOT");
            return { kind: "exists", path, negate: true };
        }
        if (this.takeWord("EXISTS")) return { kind: "exists", path, negate: false };
        const op = ["!=", "<=", ">=", "=", "<", ">"].find((o) => this.take(o));
        if (!op) this.fail("expected an operator (=, !=, <, >, <=, >=, IS, EXISTS)");
        const value = this.literal();
        if (value.type !== "number" && !["=", "!="].includes(op!)) this.fail(`${op} needs a number`);
        return { kind: "cmp", path, op: op!, value };
    }

    private selector(): Segment[] {
        this.ws();
        this.expect("$");
        const path: Segment[] = [];
        for (;;) {
            if (this.s[this.i] === ".") {
                this.i++;
                if (this.s[this.i] === "*") {
                    this.i++;
                    path.push("*");
                    continue;
                }
                const m = /^[A-Za-z0-9_@-]+/.exec(this.s.slice(this.i));
                if (!m) this.fail("expected a property name after '.'");
                path.push(m![0]);
                this.i += m![0].length;
            } else if (this.s[this.i] === "[") {
                const m = /^\[(\d+|\*)\]/.exec(this.s.slice(this.i));
                if (!m) this.fail("expected [<index>] or [*]");
                path.push(m![1] === "*" ? "*" : Number(m![1]));
                this.i += m![0].length;
            } else {
                break;
            }
        }
        if (path.length === 0) this.fail("a selector needs at least one property ($.name)");
        return path;
    }

    private literal(): Literal {
        this.ws();
        const rest = this.s.slice(this.i);
        if (rest.startsWith('"')) {
            let j = 1;
            let text = "";
            while (j < rest.length && rest[j] !== '"') {
                if (rest[j] === "\\" && j + 1 < rest.length) j++;
                text += rest[j++];
            }
            if (rest[j] !== '"') this.fail("unterminated string");
            this.i += j + 1;
            return { type: "string", text, quoted: true };
        }
        if (rest.startsWith("%")) {
            const end = rest.indexOf("%", 1);
            if (end < 0) this.fail("unterminated %regex%");
            this.i += end + 1;
            return { type: "regex", source: rest.slice(1, end) };
        }
        const num = /^-?\d+(\.\d+)?([eE][+-]?\d+)?(?=[\s)}&|]|$)/.exec(rest);
        if (num) {
            this.i += num[0].length;
            return { type: "number", value: Number(num[0]) };
        }
        const word = /^[^\s(){}&|"]+/.exec(rest);
        if (!word) this.fail("expected a value");
        this.i += word![0].length;
        return { type: "string", text: word![0], quoted: false };
    }

    private ws(): void {
        while (this.i < this.s.length && /\s/.test(this.s[this.i])) this.i++;
    }
    private take(t: string): boolean {
        this.ws();
        if (this.s.startsWith(t, this.i)) {
            this.i += t.length;
            return true;
        }
        return false;
    }
    private takeWord(w: string): boolean {
        this.ws();
        const m = new RegExp(`^${w}(?![A-Za-z0-9_])`).exec(this.s.slice(this.i));
        if (!m) return false;
        this.i += w.length;
        return true;
    }
    private expect(t: string): void {
        if (!this.take(t)) this.fail(`expected ${JSON.stringify(t)}`);
    }
    private fail(why: string): never {
        throw new Error(`filter pattern ${JSON.stringify(this.s)}: ${why} at offset ${this.i}`);
    }
}

/** Every value the selector reaches (several with `*`); an empty list when the path does not resolve. */
function select(value: unknown, path: Segment[]): unknown[] {
    let current: unknown[] = [value];
    for (const seg of path) {
        const next: unknown[] = [];
        for (const v of current) {
            if (v === null || typeof v !== "object") continue;
            if (seg === "*") next.push(...(Array.isArray(v) ? v : Object.values(v)));
            else if (typeof seg === "number") {
                if (Array.isArray(v) && seg < v.length) next.push(v[seg]);
            } else if (!Array.isArray(v) && Object.prototype.hasOwnProperty.call(v, seg)) next.push((v as Record<string, unknown>)[seg]);
        }
        current = next;
    }
    return current;
}

function wildcard(text: string): RegExp {
    return new RegExp(`^${text.split("*").map((x) => x.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`, "s");
}

function compare(v: unknown, op: string, lit: Literal): boolean {
    if (lit.type === "number") {
        const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
        if (Number.isNaN(n)) return op === "!=" && v !== undefined;
        switch (op) {
            case "=": return n === lit.value;
            case "!=": return n !== lit.value;
            case "<": return n < lit.value;
            case ">": return n > lit.value;
            case "<=": return n <= lit.value;
            default: return n >= lit.value;
        }
    }
    // Strings compare against scalars as text; objects and arrays never equal a string.
    if (v !== null && typeof v === "object") return op === "!=";
    const text = v === null ? "null" : String(v);
    const eq = lit.type === "regex" ? new RegExp(lit.source).test(text) : wildcard(lit.text).test(text);
    return op === "=" ? eq : !eq;
}

function evaluate(n: Node, event: unknown): boolean {
    switch (n.kind) {
        case "and": return evaluate(n.left, event) && evaluate(n.right, event);
        case "or": return evaluate(n.left, event) || evaluate(n.right, event);
        case "exists": {
            const found = select(event, n.path).length > 0;
            return n.negate ? !found : found;
        }
        case "is": {
            const values = select(event, n.path);
            return values.some((v) => (n.what === "NULL" ? v === null : v === (n.what === "TRUE")));
        }
        case "cmp": return select(event, n.path).some((v) => compare(v, n.op, n.value));
    }
}
