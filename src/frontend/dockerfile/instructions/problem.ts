/** A problem with one instruction; parseInstruction turns it into a located DockerfileError. @internal */
export class InstructionProblem extends Error {}
