// Evaluates a declarative Jenkinsfile with Groovy itself (so a syntax error fails here as it
// would in Jenkins) and prints, as JSON, its top-level stages, each stage's `when` and
// every `sh` step with the stage it belongs to. Usage: groovy jenkinsfile_dsl.groovy FILE
import groovy.json.JsonOutput

class Dsl {
    List<String> path = []
    List<String> stages = []
    List<Map> steps = []
    Map<String, String> when = [:]
    Map<String, Object> env = [:]
    boolean inWhen = false

    def propertyMissing(String name) {
        if (name == 'env') return [:]
        return '${' + name + '}'
    }

    def propertyMissing(String name, value) { env[name] = value }

    def methodMissing(String name, args) {
        Object[] a = args as Object[]
        if (name == 'stage') {
            path.add(a[0].toString())
            if (path.size() == 1) stages.add(a[0].toString())
            run(a[-1] as Closure)
            path.remove(path.size() - 1)
        } else if (name == 'sh') {
            def script = a[0] instanceof Map ? a[0].script : a[0]
            steps.add([stage: path.join('/'), script: script.toString()])
        } else if (name == 'when') {
            inWhen = true
            run(a[-1] as Closure)
            inWhen = false
        } else if (inWhen && name in ['branch', 'environment']) {
            when[path.join('/')] = name + ' ' + a[0].toString()
        } else if (a.length > 0 && a[-1] instanceof Closure) {
            run(a[-1] as Closure)
        }
        return name == 'credentials' ? 'credentials:' + a[0] : null
    }

    def run(Closure c) {
        c.delegate = this
        c.resolveStrategy = Closure.DELEGATE_FIRST
        c.call()
    }
}

def dsl = new Dsl()
def binding = new Binding()
binding.setVariable('pipeline', { Closure c -> dsl.run(c) })
new GroovyShell(binding).evaluate(new File(args[0]))
println JsonOutput.toJson([stages: dsl.stages, steps: dsl.steps, when: dsl.when, env: dsl.env])
