/** The dashboard page (product.md §17). */

export {
  age,
  PAGE,
  renderView,
  SCRIPT,
  STYLE,
  type ViewInput,
} from "./view.ts";
