// No imports: both the stack config and DocsSite use this, and config must not load the AWS components.

/** Why `cidr` is not an IPv4 network in CIDR notation, or undefined when it is one. */
export function cidrProblem(cidr: string): string | undefined {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
    const bad = "expected an IPv4 CIDR such as 203.0.113.0/24";
    if (!m) return bad;
    const octets = m.slice(1, 5).map(Number);
    const bits = Number(m[5]);
    if (octets.some((o, i) => o > 255 || (m[i + 1].length > 1 && m[i + 1].startsWith("0"))) || bits > 32) return bad;
    const ip = octets.reduce((n, o) => n * 256 + o, 0);
    const size = 2 ** (32 - bits);
    if (ip % size !== 0) {
        const net = Math.floor(ip / size) * size;
        const dotted = [24, 16, 8, 0].map((s) => Math.floor(net / 2 ** s) % 256).join(".");
        return `host bits are set (did you mean ${dotted}/${bits}?)`;
    }
    return undefined;
}
