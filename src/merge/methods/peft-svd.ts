// PEFT add_weighted_adapter with combination_type="svd" (see ../peft/add-weighted-adapter.ts).
import { peftMethod } from '../peft/add-weighted-adapter.ts';

export const peftSvd = peftMethod('svd');
