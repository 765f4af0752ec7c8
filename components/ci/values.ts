import * as pulumi from "@pulumi/pulumi";

/** One settings variable's value from the values map, as a secret; a missing one fails naming it (at apply time). */
export function settingValue(component: string, values: pulumi.Input<Record<string, string>>, name: string): pulumi.Output<string> {
    return pulumi.secret(
        pulumi.output(values).apply((v) => {
            const value = v?.[name];
            if (value === undefined || value === null || value === "") throw new Error(`${component}: no value for ${name} (the pipelines read it)`);
            return String(value);
        }),
    );
}
