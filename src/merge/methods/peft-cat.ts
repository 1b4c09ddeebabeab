// PEFT add_weighted_adapter with combination_type="cat" (see ../peft/add-weighted-adapter.ts).
import { peftMethod } from '../peft/add-weighted-adapter.ts';

export const peftCat = peftMethod('cat');
