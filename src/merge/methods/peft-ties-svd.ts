// PEFT add_weighted_adapter with combination_type="ties_svd" (see ../peft/add-weighted-adapter.ts).
import { peftMethod } from '../peft/add-weighted-adapter.ts';

export const peftTiesSvd = peftMethod('ties_svd');
