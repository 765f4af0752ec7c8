/**
 * Drives a dynamic provider the way the Pulumi engine chains its calls, for the Azure DevOps tests.
 *
 * What the mocks hide and this reproduces: every value crosses the gRPC boundary as a protobuf
 * Struct (serializeProperties → Struct → deserializeProperties), the engine stores and hands back
 * objects with sorted keys, `__provider` (the serialised provider) is an input and an output of
 * every dynamic resource, `diff` runs against the recorded outputs (not the inputs), `check` gets
 * the recorded inputs as olds, and a refresh replaces the outputs with what `read` returns.
 */
import * as pulumi from "@pulumi/pulumi";
// The protobuf Struct the engine and the dynamic provider host exchange.
import { Struct } from "google-protobuf/google/protobuf/struct_pb";

type Provider = pulumi.dynamic.ResourceProvider;
const PROVIDER_KEY = "__provider";

/** Keys sorted at every level, as the engine stores and returns property maps. */
export function sortKeys(v: any): any {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (v && typeof v === "object") return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
    return v;
}

/** One crossing of the engine boundary: serialise, through a protobuf Struct, deserialise, keys sorted. */
export async function roundTrip(props: Record<string, any>): Promise<Record<string, any>> {
    const wire = await pulumi.runtime.serializeProperties("engine-chain", props);
    return sortKeys(pulumi.runtime.deserializeProperties(Struct.fromJavaScript(wire)));
}

/** What the engine records for one resource. */
export interface EngineState {
    id: string;
    inputs: Record<string, any>;
    outputs: Record<string, any>;
}

/** A provider driven through engine-like chains, with the serialised provider attached as the SDK does. */
export class EngineChain {
    private providerText?: string;

    constructor(
        private readonly provider: Provider,
        /** Type name for messages and the size line, e.g. VariableGroup. */
        readonly type: string,
    ) {}

    /** The serialised provider text the SDK puts in `__provider` (as pulumi.dynamic.Resource does). */
    async serialisedProvider(): Promise<string> {
        if (this.providerText === undefined) {
            const provider = this.provider;
            this.providerText = (await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true })).text;
        }
        return this.providerText;
    }

    /** Check with the engine's olds (recorded inputs, or nothing on create); fails on check failures. */
    async check(olds: Record<string, any>, program: Record<string, any>): Promise<Record<string, any>> {
        const news = await roundTrip({ ...program, [PROVIDER_KEY]: await this.serialisedProvider() });
        const r = await this.provider.check!(olds, news);
        if (r.failures?.length) throw new Error(`${this.type} check failed: ${JSON.stringify(r.failures)}`);
        // The host puts __provider back into the checked inputs; the engine stores them as sent.
        return roundTrip({ ...(r.inputs ?? news), [PROVIDER_KEY]: news[PROVIDER_KEY] });
    }

    /** First `up`: check → create; the recorded state. */
    async create(program: Record<string, any>): Promise<EngineState> {
        const inputs = await this.check({}, program);
        const r = await this.provider.create(inputs);
        return { id: r.id, inputs, outputs: await roundTrip({ ...r.outs, [PROVIDER_KEY]: inputs[PROVIDER_KEY] }) };
    }

    /** A later `up`/`preview` of the same program: check against the recorded inputs, diff against the recorded outputs. */
    async diff(state: EngineState, program: Record<string, any>): Promise<pulumi.dynamic.DiffResult & { inputs: Record<string, any> }> {
        const inputs = await this.check(state.inputs, program);
        const r = await this.provider.diff!(state.id, state.outputs, inputs);
        return { ...r, inputs };
    }

    /** `refresh`: read against the recorded outputs; the outputs become what read returns (inputs stay). */
    async refresh(state: EngineState): Promise<EngineState> {
        const r = await this.provider.read!(state.id, state.outputs);
        if (!r.id) throw new Error(`${this.type} ${state.id}: read reports it gone`);
        return {
            id: r.id,
            inputs: r.inputs ? await roundTrip({ ...r.inputs, [PROVIDER_KEY]: state.inputs[PROVIDER_KEY] }) : state.inputs,
            outputs: await roundTrip({ ...r.props, [PROVIDER_KEY]: state.outputs[PROVIDER_KEY] }),
        };
    }

    /** An update the engine would send after a diff with changes: recorded outputs as olds. */
    async update(state: EngineState, inputs: Record<string, any>): Promise<EngineState> {
        const r = await this.provider.update!(state.id, state.outputs, inputs);
        return { id: state.id, inputs, outputs: await roundTrip({ ...r.outs, [PROVIDER_KEY]: inputs[PROVIDER_KEY] }) };
    }
}

/** Bytes of one resource's state as the engine keeps it: inputs and outputs, each with `__provider`. */
export function stateSize(state: EngineState): { total: number; provider: number } {
    return {
        total: Buffer.byteLength(JSON.stringify({ id: state.id, inputs: state.inputs, outputs: state.outputs })),
        provider: Buffer.byteLength(String(state.inputs[PROVIDER_KEY] ?? "")) + Buffer.byteLength(String(state.outputs[PROVIDER_KEY] ?? "")),
    };
}

const SIG_KEY = "4dabf18193072939515e22adb298388d";

function unwrapSecrets(v: any): any {
    if (Array.isArray(v)) return v.map(unwrapSecrets);
    if (v && typeof v === "object" && SIG_KEY in v) return unwrapSecrets(v.value);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)]));
    return v;
}

/** One dynamic resource the mocks applied through its real provider. */
export interface Applied {
    type: string;
    name: string;
    id: string;
    outs: Record<string, any>;
}

/**
 * Installs Pulumi mocks that apply every `pulumi-nodejs:dynamic/<module>:<Type>` resource through its
 * real provider (check, then create) — against whatever server the providers point at — and record
 * other resources as the default mocks do. Returns the applied resources, in order.
 */
export async function applyDynamicResources(
    module: string,
    providers: Record<string, Provider>,
    stack = "prod",
): Promise<{ applied: Applied[]; errors: Error[]; settle: () => Promise<void> }> {
    const applied: Applied[] = [];
    const errors: Error[] = [];
    const prefix = `pulumi-nodejs:dynamic/${module}:`;
    let inflight = 0;
    let registered = 0;
    const apply = async (args: pulumi.runtime.MockResourceArgs) => {
                if (!args.type.startsWith(prefix)) return { id: `${args.name}-id`, state: args.inputs };
                const type = args.type.slice(prefix.length);
                const provider = providers[type];
                if (!provider) throw new Error(`no provider for ${args.type}`);
                const { __provider: _p, ...inputs } = unwrapSecrets(args.inputs);
                const c = await provider.check!({}, inputs);
                if (c.failures?.length) throw new Error(`${args.type} ${args.name} check failed: ${JSON.stringify(c.failures)}`);
                const r = await provider.create(c.inputs);
                applied.push({ type, name: args.name, id: r.id, outs: r.outs });
                return { id: r.id, state: r.outs };
    };
    await pulumi.runtime.setMocks(
        {
            newResource: async (args) => {
                inflight++;
                registered++;
                try {
                    return await apply(args);
                } catch (err) {
                    errors.push(err as Error);
                    throw err;
                } finally {
                    inflight--;
                }
            },
            call: (args) => args.inputs,
        },
        "dbt-platform",
        stack,
        false,
    );
    // Registrations chain on each other's outputs: wait until nothing is in flight or newly registered for a while.
    const settle = async () => {
        let quiet = 0;
        let seen = -1;
        while (quiet < 10) {
            await new Promise((r) => setTimeout(r, 10));
            quiet = inflight === 0 && registered === seen ? quiet + 1 : 0;
            seen = registered;
        }
    };
    return { applied, errors, settle };
}
