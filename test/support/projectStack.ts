/**
 * Pulumi.<stack>.yaml as the Pulumi CLI writes it back (workspace.ProjectStack.Save): the struct's fields in
 * declaration order (secretsprovider, encryptedkey, encryptionsalt, config, environment), marshalled by
 * gopkg.in/yaml.v2 — two-space indent, sequences not indented under their key, map keys in yaml.v2's order,
 * no comments, no flow style. A tracked stack file in this form is left byte-identical by the CLI.
 */
import * as crypto from "crypto";
import { stringify } from "yaml";

/**
 * gopkg.in/yaml.v2 (2.4) keyList.Less for string keys: letters by code point, a non-letter before a letter
 * (after a digit, the letter first), digit runs numerically.
 */
export function yamlV2Less(a: string, b: string): boolean {
    const ar = [...a];
    const br = [...b];
    const isLetter = (c: string) => /\p{L}/u.test(c);
    const isDigit = (c: string) => /\p{Nd}/u.test(c);
    let digits = false;
    for (let i = 0; i < ar.length && i < br.length; i++) {
        if (ar[i] === br[i]) {
            digits = isDigit(ar[i]);
            continue;
        }
        const al = isLetter(ar[i]);
        const bl = isLetter(br[i]);
        if (al && bl) return ar[i] < br[i];
        if (al || bl) return digits ? al : bl;
        let ai = i;
        let bi = i;
        let an = 0;
        let bn = 0;
        if (ar[i] === "0" || br[i] === "0") {
            for (let j = i - 1; j >= 0 && isDigit(ar[j]); j--) {
                if (ar[j] !== "0") {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        for (; ai < ar.length && isDigit(ar[ai]); ai++) an = an * 10 + Number(ar[ai]);
        for (; bi < br.length && isDigit(br[bi]); bi++) bn = bn * 10 + Number(br[bi]);
        if (an !== bn) return an < bn;
        if (ai !== bi) return ai < bi;
        return ar[i] < br[i];
    }
    return ar.length < br.length;
}

function sortKeys(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (v && typeof v === "object") {
        const keys = Object.keys(v).sort((a, b) => (yamlV2Less(a, b) ? -1 : yamlV2Less(b, a) ? 1 : 0));
        return Object.fromEntries(keys.map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
    }
    return v;
}

/** The text the CLI writes for a parsed stack file. */
export function cliStackFile(doc: Record<string, unknown>): string {
    const ordered: Record<string, unknown> = {};
    for (const k of ["secretsprovider", "encryptedkey", "encryptionsalt", "config", "environment"]) {
        if (doc[k] !== undefined && doc[k] !== "") ordered[k] = k === "config" ? sortKeys(doc[k]) : doc[k];
    }
    return stringify(ordered, { indent: 2, indentSeq: false, lineWidth: 0 });
}

/**
 * The passphrase secrets provider's check value: `v1:<salt>:v1:<nonce>:<AES-256-GCM("pulumi")>` under the key
 * PBKDF2-SHA256(passphrase, salt, 1,000,000 iterations, 32 bytes). Returns the decrypted plaintext (throws on a wrong passphrase).
 */
export function decryptSaltCheck(encryptionsalt: string, passphrase: string): string {
    const [v1, salt, v1b, nonce, ciphertext] = encryptionsalt.split(":");
    if (v1 !== "v1" || v1b !== "v1" || !salt || !nonce || !ciphertext) throw new Error(`encryptionsalt has not the v1:<salt>:v1:<nonce>:<ciphertext> form: ${encryptionsalt}`);
    const key = crypto.pbkdf2Sync(passphrase, Buffer.from(salt, "base64"), 1_000_000, 32, "sha256");
    const sealed = Buffer.from(ciphertext, "base64");
    const decipher = crypto.createDecipheriv("aes-256-gcm", key, Buffer.from(nonce, "base64"));
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]).toString("utf8");
}
