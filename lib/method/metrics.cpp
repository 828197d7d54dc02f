// Implemented by the metrics helper.
