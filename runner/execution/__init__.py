"""One run from request to terminal status: plan, submit, execute, finalise, reconcile."""
