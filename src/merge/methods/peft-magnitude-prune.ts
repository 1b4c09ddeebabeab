// PEFT add_weighted_adapter with combination_type="magnitude_prune" (see ../peft/add-weighted-adapter.ts).
import { peftMethod } from '../peft/add-weighted-adapter.ts';

export const peftMagnitudePrune = peftMethod('magnitude_prune');
