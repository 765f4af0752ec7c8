/** The recording mocks of scripts/offline, installed by pulumiHost.js once run.js has registered ts-node. */
import { installMocks } from "../../scripts/offline";

export const install = (stack: string) => installMocks(stack);
