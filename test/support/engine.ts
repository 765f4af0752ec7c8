/**
 * Drives a dynamic provider the way the Pulumi engine and the Node.js dynamic-provider host chain
 * its calls, without the CLI (node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js is the host):
 *
 * - the provider is serialised exactly as pulumi.dynamic.Resource does
 *   (`serializeFunction(() => provider, { allowSecrets: true })`) and loaded back from that text as
 *   the host does (require-from-string, then `.handler()`, then `configure`), so only what survives
 *   closure serialisation takes part;
 * - the program's inputs go through `pulumi.runtime.serializeProperties` (undefined dropped, secrets
 *   wrapped), then the engine: secrets unwrapped (dynamic providers do not accept secrets), every
 *   object's keys sorted (the engine's property maps are sorted), then a protobuf Struct round trip
 *   (`Struct.fromJavaScript(...).toJavaScript()`, which rejects undefined as the host does);
 * - `__provider` is an input of every dynamic resource, and the host copies it into every check
 *   result and every create/read/update result: the engine stores it twice, in inputs and outputs;
 * - up: check(olds = recorded inputs, news) → diff(id, olds = recorded OUTPUTS, news = checked) →
 *   create / update / replace (delete-before-replace honoured) or nothing;
 *   refresh: read(id, recorded outputs) → new outputs, or the resource leaves the state;
 *   preview: check + diff, nothing applied; destroy: delete(id, recorded outputs).
 *
 * Stable API (shared with the Azure DevOps tests): `EngineResource.start`, `up`, `preview`,
 * `refresh`, `destroy`, `state`, `stateBytes`, `providerBytes`, `programOutputs`, and the
 * `toEngine` / `fromProvider` wire helpers.
 */
import Module from "module";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";

/** A property map as the engine holds it. */
export type Props = Record<string, any>;

/** What the engine records for one resource. */
export interface EngineState {
    /** `pulumi-nodejs:dynamic/<module>:<Type>`, or what the test passes. */
    type: string;
    id: string;
    /** Checked inputs, `__provider` included. */
    inputs: Props;
    /** Provider outputs, `__provider` included. */
    outputs: Props;
}

/** What one `up` or `preview` did. */
export interface EngineStep {
    /** "create", "same" (diff said no changes), "update", "replace", or "failed" (check failures). */
    op: "create" | "same" | "update" | "replace" | "failed";
    /** The diff result (absent on create). */
    diff?: pulumi.dynamic.DiffResult;
    /** Check failures, when any. */
    failures: pulumi.dynamic.CheckFailure[];
}

const PROVIDER_KEY = "__provider";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const SIG_KEY = "4dabf18193072939515e22adb298388d";

/** Sorts every object's keys, recursively (the engine's PropertyMap order). */
export function sortKeys<T>(value: T): T {
    if (Array.isArray(value)) return value.map(sortKeys) as T;
    if (value && typeof value === "object") {
        return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys((value as Props)[k])])) as T;
    }
    return value;
}

/** Replaces secret wrappers by their values: the engine sends plain values to a provider that does not accept secrets. */
function unwrapSecrets(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(unwrapSecrets);
    if (value && typeof value === "object") {
        const o = value as Props;
        if (o[SIG_KEY] === SECRET_SIG) return unwrapSecrets(o.value);
        return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, unwrapSecrets(v)]));
    }
    return value;
}

/** The gRPC hop the host makes: a protobuf Struct and back (throws on undefined, as the host does). */
function structRoundTrip(props: Props, what: string): Props {
    try {
        return Struct.fromJavaScript(props as any).toJavaScript() as Props;
    } catch (e) {
        throw new Error(`${what}: not representable as a protobuf Struct (${(e as Error).message}); an undefined value?`);
    }
}

/** Program inputs as the provider receives them: serializeProperties → engine (plain, sorted) → Struct. */
export async function toEngine(inputs: Props, label = "inputs"): Promise<Props> {
    const serialized = await pulumi.runtime.serializeProperties(label, inputs);
    return structRoundTrip(sortKeys(unwrapSecrets(serialized)) as Props, label);
}

/** A provider result as the engine stores it: Struct hop, keys sorted. */
export function fromProvider(props: Props | undefined, what: string): Props {
    return sortKeys(structRoundTrip(props ?? {}, what));
}

/** Loads a serialised provider as the dynamic-provider host does (require-from-string, then handler()). */
export function loadProvider(text: string): pulumi.dynamic.ResourceProvider {
    const m = new Module("", module);
    m.paths = (Module as any)._nodeModulePaths(path.join(__dirname, "..", ".."));
    (m as any)._compile(text, path.join(__dirname, "__provider.js"));
    return m.exports.handler();
}

/** Options of EngineResource.start. */
export interface EngineOptions {
    /** Resource type for messages and size lines, e.g. "bitbucket:DeploymentVariable". */
    type: string;
    /** Stack config the host passes to `configure` (full keys, e.g. "dbt-platform:bitbucketToken"). */
    config?: Record<string, string>;
    /** Use the provider object as it is instead of reloading its serialised text (default false). */
    inProcess?: boolean;
}

/** One dynamic resource under an emulated engine. */
export class EngineResource {
    /** The recorded state; undefined before the first create and after a destroy or a refresh that found it gone. */
    state: EngineState | undefined;

    private constructor(
        private readonly provider: pulumi.dynamic.ResourceProvider,
        /** The `__provider` text the engine stores (twice) per resource. */
        readonly providerText: string,
        readonly type: string,
    ) {}

    /** Serialises `provider` as pulumi.dynamic.Resource does and loads it as the host does. */
    static async start(provider: pulumi.dynamic.ResourceProvider, opts: EngineOptions): Promise<EngineResource> {
        const sf = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
        const loaded = opts.inProcess ? provider : loadProvider(sf.text);
        if (loaded.configure) {
            const values = opts.config ?? {};
            const key = (k: string) => (k.includes(":") ? k : `dbt-platform:${k}`);
            await loaded.configure({
                config: {
                    get: (k) => values[key(k)],
                    require: (k) => {
                        const v = values[key(k)];
                        if (v === undefined) throw new Error(`Missing required configuration key: ${k}`);
                        return v;
                    },
                },
            });
        }
        return new EngineResource(loaded, sf.text, opts.type);
    }

    /** Bytes of the `__provider` string. */
    get providerBytes(): number {
        return Buffer.byteLength(this.providerText, "utf8");
    }

    /** Bytes of the recorded state entry (type, id, inputs and outputs as JSON); 0 without state. */
    stateBytes(): number {
        return this.state ? Buffer.byteLength(JSON.stringify(this.state), "utf8") : 0;
    }

    /** The outputs as the program sees them (deserializeProperties of the stored outputs, `__provider` left out). */
    programOutputs(): Props {
        if (!this.state) throw new Error(`${this.type}: no state`);
        const { [PROVIDER_KEY]: _p, ...outs } = this.state.outputs;
        return pulumi.runtime.deserializeProperties(Struct.fromJavaScript(outs as any));
    }

    /** Check as the host does: news carry __provider; the result keeps it. */
    private async check(news: Props): Promise<{ inputs: Props; failures: pulumi.dynamic.CheckFailure[] }> {
        const wire = await toEngine({ ...news, [PROVIDER_KEY]: this.providerText }, `${this.type} inputs`);
        const olds = this.state?.inputs ?? {};
        if (!this.provider.check) return { inputs: wire, failures: [] };
        const r = await this.provider.check(olds, wire);
        const inputs = { ...(r.inputs ?? wire), [PROVIDER_KEY]: wire[PROVIDER_KEY] };
        return { inputs: fromProvider(inputs, `${this.type} check result`), failures: r.failures ?? [] };
    }

    private async diff(checked: Props): Promise<pulumi.dynamic.DiffResult> {
        const s = this.state!;
        if (!this.provider.diff) return { changes: true };
        return this.provider.diff(s.id, s.outputs, checked);
    }

    /** Preview: check and diff against the recorded outputs; applies nothing. */
    async preview(news: Props): Promise<EngineStep> {
        const { inputs, failures } = await this.check(news);
        if (failures.length > 0) return { op: "failed", failures };
        if (!this.state) return { op: "create", failures };
        const diff = await this.diff(inputs);
        return { op: diff.changes === false ? "same" : diff.replaces && diff.replaces.length > 0 ? "replace" : "update", diff, failures };
    }

    /** `pulumi up` for this resource with the program's `news`. */
    async up(news: Props): Promise<EngineStep> {
        const { inputs, failures } = await this.check(news);
        if (failures.length > 0) throw new Error(`${this.type}: check failed: ${failures.map((f) => f.reason).join("; ")}`);
        if (!this.state) {
            await this.create(inputs);
            return { op: "create", failures };
        }
        const diff = await this.diff(inputs);
        if (diff.changes === false) return { op: "same", diff, failures };
        if (diff.replaces && diff.replaces.length > 0) {
            const old = this.state;
            if (diff.deleteBeforeReplace) {
                await this.provider.delete?.(old.id, old.outputs);
                this.state = undefined;
                await this.create(inputs);
            } else {
                await this.create(inputs);
                await this.provider.delete?.(old.id, old.outputs);
            }
            return { op: "replace", diff, failures };
        }
        const r = (await this.provider.update?.(this.state.id, this.state.outputs, inputs)) ?? {};
        this.state = {
            ...this.state,
            inputs,
            outputs: fromProvider({ ...(r.outs ?? {}), [PROVIDER_KEY]: inputs[PROVIDER_KEY] }, `${this.type} update result`),
        };
        return { op: "update", diff, failures };
    }

    private async create(inputs: Props): Promise<void> {
        const r = await this.provider.create(inputs);
        if (!r.id) throw new Error(`${this.type}: create returned no id`);
        this.state = {
            type: this.type,
            id: r.id,
            inputs,
            outputs: fromProvider({ ...(r.outs ?? {}), [PROVIDER_KEY]: inputs[PROVIDER_KEY] }, `${this.type} create result`),
        };
    }

    /** `pulumi refresh`: read(id, recorded outputs); a result without id drops the resource from state. Returns whether it still exists. */
    async refresh(): Promise<boolean> {
        if (!this.state) throw new Error(`${this.type}: nothing to refresh`);
        if (!this.provider.read) return true;
        const r = await this.provider.read(this.state.id, this.state.outputs);
        if (!r.id) {
            this.state = undefined;
            return false;
        }
        const provider = this.state.outputs[PROVIDER_KEY];
        this.state = {
            ...this.state,
            id: r.id,
            outputs: fromProvider({ ...(r.props ?? {}), [PROVIDER_KEY]: provider }, `${this.type} read result`),
            inputs: r.inputs ? fromProvider({ ...r.inputs, [PROVIDER_KEY]: provider }, `${this.type} read inputs`) : this.state.inputs,
        };
        return true;
    }

    /** `pulumi destroy`: delete(id, recorded outputs). */
    async destroy(): Promise<void> {
        if (!this.state) return;
        await this.provider.delete?.(this.state.id, this.state.outputs);
        this.state = undefined;
    }
}
