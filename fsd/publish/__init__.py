"""The daemon's write side: publish streams into the online store under the publish rules, and the retention
worker that purges retired versions. (The client-side offline -> online loader is `fsd.sync`.)"""
