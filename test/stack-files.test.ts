/** Pulumi.dev.yaml survives `pulumi stack select dev --create` (README's set-up command) byte for byte. */
import assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { ROOT } from "../scripts/offline";
import { cliStackFile, decryptSaltCheck, yamlV2Less } from "./support/projectStack";

/** The passphrase README.md and scripts/up-dev.sh document for the dev stack. */
const DEV_PASSPHRASE = "dbt-platform-dev";

describe("Pulumi.dev.yaml as the CLI writes it", () => {
    const text = fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8");
    const doc = parse(text);

    it("carries the encryptionsalt of the documented passphrase (its check value decrypts to 'pulumi')", () => {
        assert.strictEqual(decryptSaltCheck(doc.encryptionsalt, DEV_PASSPHRASE), "pulumi");
        assert.throws(() => decryptSaltCheck(doc.encryptionsalt, "not-the-passphrase"), /unable to authenticate|auth/i);
        const script = fs.readFileSync(path.join(ROOT, "scripts/up-dev.sh"), "utf8");
        assert.ok(script.includes(`PULUMI_CONFIG_PASSPHRASE:-${DEV_PASSPHRASE}`), "up-dev.sh uses the same passphrase");
    });

    it("is in the CLI's own form (key order, block style, no comments), so saving it back changes nothing", () => {
        assert.strictEqual(text, cliStackFile(doc));
    });

    it("orders keys as gopkg.in/yaml.v2 does", () => {
        const sorted = (keys: string[]) => [...keys].sort((a, b) => (yamlV2Less(a, b) ? -1 : yamlV2Less(b, a) ? 1 : 0));
        assert.deepStrictEqual(sorted(["b", "a2", "a10", "A", "a_", "a-b", "ab"]), ["A", "a-b", "a_", "a2", "a10", "ab", "b"]);
        assert.deepStrictEqual(sorted(["dbt-platform:warehouse", "dbt-platform:aws", "dbt-platform:ci"]), ["dbt-platform:aws", "dbt-platform:ci", "dbt-platform:warehouse"]);
    });
});
