// PEFT add_weighted_adapter with combination_type="linear" (see ../peft/add-weighted-adapter.ts).
import { peftMethod } from '../peft/add-weighted-adapter.ts';

export const peftLinear = peftMethod('linear');
