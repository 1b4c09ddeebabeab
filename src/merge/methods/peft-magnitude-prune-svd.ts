// PEFT add_weighted_adapter with combination_type="magnitude_prune_svd" (see ../peft/add-weighted-adapter.ts).
import { peftMethod } from '../peft/add-weighted-adapter.ts';

export const peftMagnitudePruneSvd = peftMethod('magnitude_prune_svd');
