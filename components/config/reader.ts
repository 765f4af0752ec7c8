/**
 * A small, typed reader for untrusted config trees. It collects every problem instead of
 * stopping at the first, so one `pulumi preview` shows the whole list.
 */

/** One problem with one config value. */
export interface ConfigProblem {
    /** Full config path, e.g. `dbt-platform:warehouse.users[1].role`. */
    path: string;
    /** The offending value (undefined when the key is missing). */
    value: unknown;
    /** What a valid value looks like. */
    expected: string;
}

/** Thrown when a stack's config is invalid; lists every problem found. */
export class ConfigError extends Error {
    // Named stackName, not stack: Error#stack carries the trace that `pulumi up` prints.
    constructor(public readonly stackName: string, public readonly problems: ConfigProblem[]) {
        super(
            `Invalid configuration for stack "${stackName}" (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
                problems.map((p) => `  - ${p.path}: ${describe(p.value)}; expected ${p.expected}`).join("\n"),
        );
        this.name = "ConfigError";
    }
}

function describe(value: unknown): string {
    if (value === undefined) return "missing";
    const json = JSON.stringify(value);
    const shown = json === undefined ? String(value) : json;
    return `got ${shown.length > 80 ? shown.slice(0, 77) + "..." : shown}`;
}

/** A position in the config tree plus the shared problem list. */
export class Node {
    constructor(
        public readonly path: string,
        public readonly value: unknown,
        private readonly problems: ConfigProblem[],
    ) {}

    get present(): boolean {
        return this.value !== undefined && this.value !== null;
    }

    /** The same position holding a derived value (e.g. a default built from other fields). */
    derived(value: unknown): Node {
        return new Node(this.path, value, this.problems);
    }

    fail(expected: string, value: unknown = this.value): undefined {
        this.problems.push({ path: this.path, value, expected });
        return undefined;
    }

    /** Reads an object, rejecting keys not in `known`. */
    object(known: readonly string[]): ObjectNode | undefined {
        if (typeof this.value !== "object" || this.value === null || Array.isArray(this.value)) {
            return this.fail(`an object with keys ${known.join(", ")}`);
        }
        const record = this.value as Record<string, unknown>;
        for (const key of Object.keys(record)) {
            if (!known.includes(key)) {
                new Node(`${this.path}.${key}`, record[key], this.problems).fail(
                    `no such key; known keys of ${this.path} are ${known.join(", ")}`,
                );
            }
        }
        return new ObjectNode(this.path, record, this.problems);
    }

    /** Like object(), but an absent value reads as an empty object (all defaults). */
    objectOrEmpty(known: readonly string[]): ObjectNode | undefined {
        return this.present ? this.object(known) : new ObjectNode(this.path, {}, this.problems);
    }

    string(pattern?: RegExp, expected?: string): string | undefined {
        if (typeof this.value !== "string" || this.value.length === 0) {
            return this.fail(expected ?? "a non-empty string");
        }
        if (pattern && !pattern.test(this.value)) {
            return this.fail(expected ?? `a string matching ${pattern}`);
        }
        return this.value;
    }

    integer(min: number, max: number): number | undefined {
        if (typeof this.value !== "number" || !Number.isInteger(this.value) || this.value < min || this.value > max) {
            return this.fail(`an integer from ${min} to ${max}`);
        }
        return this.value;
    }

    boolean(): boolean | undefined {
        if (typeof this.value !== "boolean") return this.fail("true or false");
        return this.value;
    }

    oneOf<T extends string>(choices: readonly T[]): T | undefined {
        if (typeof this.value !== "string" || !(choices as readonly string[]).includes(this.value)) {
            return this.fail(`one of ${choices.join(", ")}`);
        }
        return this.value as T;
    }

    /**
     * Reads an array, mapping each item. Items that fail keep their slot as undefined so that
     * later cross-field checks still report the item's own index.
     */
    array<T>(item: (n: Node, index: number) => T | undefined, expected = "a list"): (T | undefined)[] | undefined {
        if (!Array.isArray(this.value)) return this.fail(expected);
        return this.value.map((v, i) => item(new Node(`${this.path}[${i}]`, v, this.problems), i));
    }
}

/** An object whose fields can be read as required or optional nodes. */
export class ObjectNode {
    constructor(
        public readonly path: string,
        private readonly record: Record<string, unknown>,
        private readonly problems: ConfigProblem[],
    ) {}

    /** The child node; when missing, records a problem and reads on as undefined. */
    required(key: string): Node {
        const node = this.child(key);
        if (!node.present) node.fail("a value (this key is required)");
        return node;
    }

    /** Reads an optional child with `read`, or returns `fallback` when the key is absent. */
    optional<T>(key: string, fallback: T, read: (n: Node) => T | undefined): T | undefined {
        const node = this.child(key);
        return node.present ? read(node) : fallback;
    }

    child(key: string): Node {
        return new Node(`${this.path}.${key}`, this.record[key], this.problems);
    }
}
