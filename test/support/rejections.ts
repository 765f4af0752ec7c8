/** Runs `body` while collecting the program's unhandled rejections (how errors inside apply fail `pulumi up`). */
export async function withUnhandledRejections(body: (errors: string[]) => Promise<void>): Promise<void> {
    const errors: string[] = [];
    const listener = (e: any) => errors.push(String(e?.message ?? e));
    process.on("unhandledRejection", listener);
    try {
        await body(errors);
    } finally {
        process.off("unhandledRejection", listener);
    }
}
